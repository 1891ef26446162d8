"""Behaviour decoding targets on the model's windows.

A decoding dataset is the window table of :func:`hf_neuroformer.windows.build_window_datasets`
(same columns, same rows, same split plan) with one column per behavioural target,
``target_<name>``. Both the fine-tuned Neuroformer (:mod:`hf_neuroformer.finetuning`) and the
classical baselines (:mod:`hf_neuroformer.baselines`) read these rows, so they see identical
windows, bins, splits and targets.

Value of a target in a window (current window ``[start, start + current_window)``):

* behaviour series (``recording.behaviour[name]``): the mean of the samples inside the current
  window (the circular mean, ``atan2(mean sin, mean cos)``, for circular targets; for
  classification targets the label most of them hold, of labels tied on the count the one of the
  sample nearest the window's centre; NaN samples ignored). When no sample falls inside, the finite sample nearest the window's centre, if it
  lies within ``max(current_window, 2 * median sampling interval)`` of the centre AND inside the
  window's own segment of the split plan (:func:`hf_neuroformer.windows.window_segments`: its
  block of the split in time mode, its trial in trial mode); otherwise the value is undefined
  (NaN), e.g. in a tracking gap, before tracking started, or where the nearest sample of a series
  sampled more sparsely than the windows lies across a split boundary (in the split gap or in
  another split's block: reading it would leak another split's behaviour into this window's
  label).
* trial column (``"trial:<column>"``, ``recording.trial_info[column]``): the label of the
  trial whose ``[start, stop)`` holds the window start (NaN when none does).

Windows whose target is undefined are counted per target (never silently): the report
returned by :func:`build_decoding_datasets` gives, per split, the windows before, those
removed by an optional ``window_mask``, each target's windows without a value, and those
dropped. A window is dropped only when no target has a value there (with one target: every
window without its value); with several targets a window that lacks one target's value keeps
it as NaN, which the decoder's loss and metrics and the baselines leave out for that target
only, so each target is trained and scored on the windows where it is recorded.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .argument_checks import KINDS, REGRESSION_LOSSES, check_hl_gauss_settings, hl_gauss_bin_range, target_label_form
from .configuration_neuroformer import CLASS_WEIGHTS, is_finite_number, is_real_number, is_whole_number
from .binning import on_time_grid, window_ends
from .metrics.decoding import radians_problem, unit_is_degrees
from .modalities import modality_column_names
from .recording import count_noun
from .windows import (SPLITS, WINDOW_GRID, NeuroformerCollator, build_window_datasets, column_values, trial_at, trials_holding,
                      window_segments)


class DecodingTargetError(ValueError):
    """A decoding target is missing from the recording, malformed, or has a label the
    training split never shows. The message names the target and what was expected."""


@dataclass
class DecodingTarget:
    """One behavioural variable to decode.

    Attributes:
        name: key of ``recording.behaviour`` (a :class:`~hf_neuroformer.recording.BehaviourSeries`)
            or ``"trial:<column>"`` for ``recording.trial_info[column]``.
        kind: ``"regression"``, ``"classification"`` or ``"circular"`` (radians, within
            ``[-2 pi, 2 pi]``; a series whose ``unit`` is degrees, or larger values, are refused).
        num_classes: classification: set by :func:`build_decoding_datasets` from the TRAIN
            split's labels (classes = sorted unique train labels).
        column: which column of a 2-D ``BehaviourSeries.values`` (required when it has more
            than one column).
        weight: weight of this target's loss in a multitask model (default 1).
        classes: classification: the sorted train labels, set by :func:`build_decoding_datasets`;
            class index ``i`` in the ``target_<name>`` column means ``classes[i]``. A bool trial
            column's or boolean behaviour series' (``BehaviourSeries.boolean``) classes are
            ``[False, True]`` as written (a decoder saved with ``[0, 1]``
            reads the same: ``True == 1``); other labels are ints, or floats when not whole.
        class_weight: classification: ``"balanced"`` (default) weights each window's
            cross-entropy by ``n / (k * n_c)`` (``n`` training windows used, ``k`` classes among
            them, ``n_c`` windows of its class; scikit-learn's ``class_weight="balanced"``, the
            setting of the classification baselines of :mod:`hf_neuroformer.baselines`), with
            the counts of the TRAINING windows actually used (the few-shot block); None = no
            weighting. Ignored for other kinds. The weights are stored in the target's
            ``config.decoding_targets`` entry (:func:`target_dicts`).
        loss: regression: ``"mse"`` (default: MSE on the standardised value) or ``"hl_gauss"``
            (the histogram loss with a Gaussian-smoothed target, Imani & White ICML 2018, as
            Farebrother et al. ICML 2024, arXiv 2403.03950: cross-entropy of ``num_bins`` logits
            against the mass of N(z, sigma^2) per bin, prediction the expected bin centre; see
            :class:`~hf_neuroformer.modeling_neuroformer.NeuroformerForBehaviorDecoding`).
        num_bins: ``"hl_gauss"`` only: the number of equal value bins, an integer >= 2.
        hl_gauss_sigma_ratio: ``"hl_gauss"`` only: the Gaussian's sigma in bin widths, > 0
            (0.75 as Farebrother et al. recommend). :func:`target_dicts` places the bins over the
            standardised training values with 3 sigma beyond each extreme
            (:func:`~hf_neuroformer.argument_checks.hl_gauss_bin_range`): a far outlier stretches them,
            which fine-tuning warns about when most values then share a few bins
            (:func:`~hf_neuroformer.finetuning.hl_gauss_crowded_notes`, kept in ``target_notes``).

    Raises:
        DecodingTargetError: ``name`` not a non-empty str, ``kind`` not in :data:`KINDS`, ``weight``
            not a finite number >= 0, ``column`` not None or an integer >= 0 (numpy integers are
            kept as ``int``), ``class_weight`` not in :data:`CLASS_WEIGHTS`; ``loss`` not in
            :data:`~hf_neuroformer.argument_checks.REGRESSION_LOSSES`, ``"hl_gauss"`` for a target
            that is not a regression, ``num_bins`` / ``hl_gauss_sigma_ratio`` given without it or
            invalid with it (:func:`~hf_neuroformer.argument_checks.check_hl_gauss_settings`).
    """

    name: str
    kind: str
    num_classes: Optional[int] = None
    column: Optional[int] = None
    weight: float = 1.0
    classes: Optional[list] = None
    class_weight: Optional[str] = "balanced"
    loss: str = "mse"
    num_bins: Optional[int] = None
    hl_gauss_sigma_ratio: Optional[float] = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise DecodingTargetError(f"DecodingTarget({self.name!r}).name: expected a str (a behaviour series, or "
                                      f"'trial:<column>'), got {type(self.name).__name__} {self.name!r}")
        if self.kind not in KINDS:
            raise DecodingTargetError(f"DecodingTarget({self.name!r}).kind: expected one of {KINDS}, got {self.kind!r}")
        if not (is_finite_number(self.weight) and self.weight >= 0):
            raise DecodingTargetError(f"DecodingTarget({self.name!r}).weight: expected a finite number >= 0, got {self.weight!r}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise DecodingTargetError(
                f"DecodingTarget({self.name!r}).class_weight: expected one of {CLASS_WEIGHTS}, got {self.class_weight!r}"
            )
        self.weight = float(self.weight)  # a numpy number too; config.json and metrics.json keep a plain float
        if self.column is not None:  # np.int64 (from np.arange) failed the save after training; 1.7 read column 1
            if not is_whole_number(self.column) or self.column < 0:
                raise DecodingTargetError(
                    f"DecodingTarget({self.name!r}).column: expected None or an integer >= 0 (a column of a 2-D "
                    f"series), got {type(self.column).__name__} {self.column!r}"
                )
            self.column = int(self.column)
        where = f"DecodingTarget({self.name!r}).{{}}"
        if self.loss not in REGRESSION_LOSSES:
            raise DecodingTargetError(f"{where.format('loss')}: expected one of {list(REGRESSION_LOSSES)}, got {self.loss!r}")
        if self.loss == "hl_gauss":
            if self.kind != "regression":
                raise DecodingTargetError(f"{where.format('loss')}: 'hl_gauss' is a loss of regression targets, got "
                                          f"it for kind {self.kind!r}")
            self.num_bins = check_hl_gauss_settings(self.num_bins, self.hl_gauss_sigma_ratio, where,
                                                    error=DecodingTargetError)
            self.hl_gauss_sigma_ratio = float(self.hl_gauss_sigma_ratio)
        elif self.num_bins is not None or self.hl_gauss_sigma_ratio is not None:
            field = "num_bins" if self.num_bins is not None else "hl_gauss_sigma_ratio"
            raise DecodingTargetError(f"{where.format(field)}: only read with loss 'hl_gauss', got loss {self.loss!r}")

    @property
    def label(self) -> str:
        """What the target is called in the dataset, the metrics and the reports:
        :func:`target_label` of ``name`` and ``column`` (``"position[1]"`` for column 1, ``name``
        without a column)."""
        return target_label(self.name, self.column)

    @property
    def column_name(self) -> str:
        """The dataset column holding this target: ``target_<label>`` (``target_position[1]``)."""
        return f"target_{self.label}"


def target_label(name: str, column: Optional[int] = None) -> str:
    """A target's label from its ``name`` and ``column`` (e.g. of a ``config.decoding_targets``
    entry): ``name`` when ``column`` is None, else ``"<name>[<column>]"``. Every column of a 2-D
    series gets its own label, so two columns of one series are two distinct targets (dataset
    columns ``target_<label>``, metric keys ``<label>/<metric>``)."""
    return name if column is None else f"{name}[{int(column)}]"


def parse_target_label(text: str, recording=None) -> Tuple[str, Optional[int]]:
    """``(name, column)`` of a target label, the inverse of :func:`target_label`: ``"x"`` ->
    ``("x", None)``, ``"position[1]"`` -> ``("position", 1)`` (spaces inside the brackets allowed).
    With ``recording``, a behaviour series or ``"trial:<column>"`` whose own name is ``text``
    (an NWB series may be named ``head[0]``) is that variable: ``(text, None)``. Whether the
    name and column exist is checked where the values are read (:func:`expand_columns`).

    Raises:
        DecodingTargetError: ``text`` has a bracket but is not ``NAME[k]`` with ``k`` an integer
            >= 0 (``position[``, ``position[a]``, ``position[-1]``) and is no variable's own name.
    """
    if recording is not None and (text in recording.behaviour or (
            text.startswith("trial:") and recording.trials is not None and text[6:] in (recording.trial_info or {}))):
        return text, None
    return target_label_form(text, DecodingTargetError)


def available_targets(recording) -> List[str]:
    """Names a :class:`DecodingTarget` can take for ``recording``: behaviour keys, then
    ``"trial:<column>"`` for each trial column."""
    out = sorted(recording.behaviour)
    if recording.trials is not None:
        out += [f"trial:{c}" for c in sorted(recording.trial_info)]
    return out


def infer_kind(recording, name: str) -> str:
    """A default kind for target ``name``: ``"classification"`` for a trial column,
    ``"circular"`` for a behaviour series in radians (``unit`` ``rad``/``radian(s)``),
    else ``"regression"``.

    Raises:
        DecodingTargetError: ``name`` is not in the recording (lists the available targets).
    """
    if name.startswith("trial:"):
        if recording.trials is None or name[len("trial:"):] not in recording.trial_info:
            raise _missing(recording, DecodingTarget(name, "classification"))
        return "classification"
    if name not in recording.behaviour:
        raise _missing(recording, DecodingTarget(name, "regression"))
    unit = recording.behaviour[name].unit.strip().lower()
    return "circular" if unit in ("rad", "radian", "radians") else "regression"


def _missing(recording, target: DecodingTarget) -> DecodingTargetError:
    name = target.name
    # an event stream or an epoch (interval table) of the recording is in it, just not a variable with a value
    # per window: "not in this recording" alone sent the user looking for a misspelling
    if name in (recording.events or {}):
        what = (f"; {name!r} is an event stream of it (recording.events: point times, no value at each window), "
                "and a target needs a value per window")
    elif name in (recording.epochs or {}):
        what = (f"; {name!r} is an epoch of it (an interval), not a variable: restrict the recording to it with "
                f"--epoch {name} (load_recording(..., epoch={name!r}))")
    else:
        what = ""
    available = available_targets(recording)
    # "available targets: []" sent the user looking for a misspelling in a recording with nothing to decode
    listed = (f"available targets: {available}" if available else
              "available targets: none, the recording holds no behaviour series and no trial columns")
    return DecodingTargetError(
        f"target {name!r}: {'not a decodable variable of this recording' + what if what else 'not in this recording'}; "
        f"{listed} (behaviour series by name, trial columns as 'trial:<column>')"
    )


def _raw_values(recording, target: DecodingTarget):
    """``(values, unit, timestamps)`` of ``target`` as recorded: a trial column's ``(n_trials,)``
    labels (unit and timestamps None), or a behaviour series' ``(n_samples,)`` float64 values (the
    ``column`` of a 2-D series), its unit and its ``(n_samples,)`` timestamps, s.

    Raises:
        DecodingTargetError: the target is not in the recording, trial labels that are not
            numeric, a 2-D series without ``column``, a column out of range, or a column other
            than 0 for a 1-D series or a trial column.
    """
    if target.name.startswith("trial:"):
        col = target.name[len("trial:"):]
        if recording.trials is None or col not in recording.trial_info:
            raise _missing(recording, target)
        if target.column not in (None, 0):
            raise DecodingTargetError(f"target {target.label!r}: column {target.column} given for a trial column "
                                      f"({target.name!r} has one column, 0)")
        labels = np.asarray(recording.trial_info[col])
        if labels.dtype.kind not in "biuf":
            # "got dtype object" did not say the column was text, nor what to do with it
            shown = sorted({str(v) for v in labels.tolist()})
            flat = labels.ravel().tolist()
            is_bool = [isinstance(v, (bool, np.bool_)) for v in flat]
            missing = [v is None or (isinstance(v, numbers.Real) and not b and v != v) for v, b in zip(flat, is_bool)]
            number = [isinstance(v, numbers.Real) and not b and not m for v, b, m in zip(flat, is_bool, missing)]
            todo = (f"map them to integer codes in a new trial column first (codes, names = "
                    f"pandas.factorize(trial_info[{col!r}]); in an NWB file, add the codes as a trials column)")
            # "text" only for text: a datetime64 / timedelta64 column was called text too
            what = "text" if labels.dtype.kind in "OUS" else "values that are not numbers"
            if any(is_bool) and any(number):
                what = "booleans mixed with numbers (True equals 1 and False 0: they would be one class)"
            elif labels.dtype == object and all(b or m or n for b, m, n in zip(is_bool, missing, number)):
                # [True, False, nan] (a pandas column of booleans with gaps) was called 'booleans mixed with
                # numbers', and [True, None] or [1, 2] in an object array 'text'; NaN / None is a trial without a label
                kind = "booleans" if any(is_bool) else "numbers" if any(number) else "no values"
                gaps = f" with {sum(missing)} missing (NaN or None: trials without a label)" if any(missing) else ""
                what = f"{kind}{gaps} in an object column, which is not read as numbers"
                todo = (f"convert the column to numbers{', NaN for the trials without a label' if gaps else ''}: "
                        f"trial_info[{col!r}] = np.asarray(trial_info[{col!r}], dtype=float)"
                        + (" (True becomes 1.0, False 0.0)" if any(is_bool) else "")
                        + ("; the NaN trials are then left out of the windows" if gaps else ""))
            raise DecodingTargetError(
                f"target {target.name!r}: expected numeric trial labels, got {what} (dtype {labels.dtype}; values such as "
                f"{', '.join(repr(v) for v in shown[:3])}{', ...' if len(shown) > 3 else ''}); {todo}")
        return labels, None, None
    if target.name not in recording.behaviour:
        raise _missing(recording, target)
    series = recording.behaviour[target.name]
    ts, vals = series.timestamps, series.values
    if vals.ndim == 2:
        if target.column is None:
            if vals.shape[1] != 1:
                raise DecodingTargetError(
                    f"target {target.name!r}: the series has {vals.shape[1]} columns; pick one with "
                    f"DecodingTarget({target.name!r}, kind, column=k), k in [0, {vals.shape[1]}), or take one target per "
                    f"column with expand_columns (the neuroformer command: --target {target.name} decodes every column, "
                    f"--target '{target.name}[k]' column k)"
                )
            vals = vals[:, 0]
        else:
            if not 0 <= int(target.column) < vals.shape[1]:
                raise DecodingTargetError(
                    f"target {target.label!r}: column {target.column} outside [0, {vals.shape[1]}) (the series "
                    f"{target.name!r} has {vals.shape[1]} column{'' if vals.shape[1] == 1 else 's'})"
                )
            vals = vals[:, int(target.column)]
    elif target.column not in (None, 0):
        raise DecodingTargetError(f"target {target.label!r}: column {target.column} given for a 1-D series "
                                  f"({target.name!r} has one column, 0)")
    return vals, series.unit, ts


def expand_columns(recording, targets: Sequence[DecodingTarget]) -> List[DecodingTarget]:
    """``targets`` with every column of a 2-D behaviour series made its own target.

    A target without ``column`` whose series ``values`` has shape ``(n_samples, c)``, ``c > 1``
    (e.g. an NWB SpatialSeries of position, ``(n, 2)``), becomes ``c`` targets, columns
    ``0 .. c-1`` in order, labelled ``"<name>[k]"`` (:func:`target_label`), each a copy of it
    (same kind, weight, class_weight). Every other target is kept as it is: a 1-D series or an
    ``(n, 1)`` one, a trial column, or a target with a column. Each target is checked against
    the recording (:func:`_raw_values`) before anything is returned.

    Args:
        recording: the :class:`~hf_neuroformer.recording.SpikeRecording`.
        targets: :class:`DecodingTarget` list, in the order wanted.

    Returns:
        a new list of :class:`DecodingTarget` (the given objects are not changed).

    Raises:
        DecodingTargetError: a target not in the recording (lists the available ones), a column
            outside ``[0, c)``, a column other than 0 for a 1-D series or a trial column, or two
            targets reading the same column of one series (``position`` and ``position[0]``;
            ``x`` and ``x[0]`` for a 1-D ``x``).
    """
    out: List[DecodingTarget] = []
    given: List[str] = []  # the label of the target each one of ``out`` comes from, as given
    for t in targets:
        if t.name.startswith("trial:") or t.name not in recording.behaviour or t.column is not None:
            parts = [t]
        else:
            vals = recording.behaviour[t.name].values
            n_cols = vals.shape[1] if np.ndim(vals) == 2 else 1
            parts = [dataclasses.replace(t, column=k) for k in range(n_cols)] if n_cols > 1 else [t]
        for p in parts:
            _raw_values(recording, p)  # missing target, column out of range, a column of a 1-D series
            out.append(p)
            given.append(t.label)
    check_each_column_once(out, given)
    return out


def check_each_column_once(targets: Sequence[DecodingTarget], given: Optional[Sequence[str]] = None) -> None:
    """Refuse two targets reading the same column of one variable, the one rule of
    :func:`expand_columns` and :func:`build_decoding_datasets`: a target reads column
    ``column`` of ``name``, or column 0 without ``column`` (``x`` and ``x[0]`` of a 1-D ``x`` read
    the same values), so ``(name, column or 0)`` must differ between targets.

    Args:
        targets: the :class:`DecodingTarget` list, with columns expanded or not.
        given: optional, the label to name each target by in the message (:func:`expand_columns`:
            the target as given, ``position`` for ``position[0]``); default its own label.

    Raises:
        DecodingTargetError: naming both targets, the column and the variable.
    """
    seen: Dict[Tuple[str, int], str] = {}
    for i, t in enumerate(targets):
        said = given[i] if given is not None else t.label
        key = (t.name, 0 if t.column is None else int(t.column))
        if key in seen:
            raise DecodingTargetError(f"targets {seen[key]!r} and {said!r} both decode column {key[1]} of {t.name!r}; "
                                      "give each column once")
        seen[key] = said


def check_targets_sampled(recording, targets: Sequence[DecodingTarget], *, epoch: Optional[str] = None,
                          epoch_known: bool = False, label: Callable[[str], str] = lambda name: name) -> None:
    """Refuse a target whose behaviour series has no sample in ``recording`` (head direction
    ``ry`` in the sleep epoch of A2929, recorded only in wake), before any window is tokenized.

    Without this check such a target reached :func:`build_decoding_datasets`, which tokenized every
    window and then failed with "no training window left" and the whole split report. Trial
    columns (``trial:<name>``) and names the recording lacks are left to the later checks (which
    list the available targets).

    Args:
        recording: the :class:`~hf_neuroformer.recording.SpikeRecording` to decode from.
        targets: the :class:`DecodingTarget` list (columns already expanded or not).
        epoch: the epoch ``recording`` was selected to, when the caller knows it (``neuroformer
            finetune --epoch``), else None.
        epoch_known: whether ``epoch`` is known (None then means the whole recording, and an epoch
            cannot help); False (Python callers: the recording may already be one epoch) adds how to
            select the epoch a series was recorded in.
        label: maps the argument names ``"target"``, ``"epoch"`` and ``"recording"`` to the names the
            message uses (identity for Python callers; ``neuroformer finetune`` gives ``--target``,
            ``--epoch`` and ``--data``).

    Raises:
        DecodingTargetError: (a ``ValueError``) naming the first such target, its series and where
            it has no sample, and saying when the series is an event stream (``recording.events``)
            rather than a behaviour to decode.
    """
    for t in targets:
        if t.name.startswith("trial:") or t.name not in recording.behaviour or len(recording.behaviour[t.name].timestamps):
            continue
        if epoch is not None:
            where = f"{label('epoch')} {epoch!r} of {label('recording')}"
        elif epoch_known:
            where = label("recording")
        else:  # the recording may be an epoch already: its time says which
            lo, hi = recording.time_domain
            where = f"{label('recording')} ({lo:.3f}-{hi:.3f} s)"
        if t.name in (recording.events or {}):
            hint = " (it is an event stream of the recording, not a behaviour to decode)"
        elif epoch is not None:
            hint = f", or the {label('epoch')} it was recorded in"
        elif not epoch_known:
            hint = (f", or a recording of the {label('epoch')} it was recorded in (load_recording(path, "
                    f"epoch=...) or recording.select_epoch(...))")
        else:
            hint = ""
        raise DecodingTargetError(f"{label('target')} {t.label!r}: the behaviour series {t.name!r} has no sample in "
                                  f"{where}; expected a variable recorded there{hint}")


def kind_problem(recording, target: DecodingTarget) -> Optional[str]:
    """Why ``target.kind`` does not fit the target's recorded values, or None when it may.

    The kind says what the numbers mean, and only the combinations that are wrong whatever the
    numbers mean are refused (all finite values of the trial column / series are read, before any
    window is made):

    * any kind: a constant (all finite values equal), or samples none of which is finite (all NaN):
      nothing to decode.
    * ``"circular"``: angles in radians, a numeric series (e.g. a head direction). Refused: a
      series in degrees or values beyond 2 pi (:func:`hf_neuroformer.metrics.decoding.radians_problem`),
      and values that are all whole numbers (an integer dtype, or floats such as -1/0/1): class
      labels or condition codes, not angles (no real angle series sits on whole radians).
    * ``"classification"``: class labels, whole numbers (trial conditions, a discrete state).
      Refused: any value that is not a whole number, i.e. a continuous series (e.g. a position with
      thousands of distinct values); decode it as ``"regression"``. Whole-number labels pass
      whatever their number (a frame or image index may have hundreds of classes); a label of
      validation/test that train lacks leaves its windows out of the target's metrics, counted
      and warned about (:func:`build_decoding_datasets`, ``n_unseen_class``). A
      window's class is the label most of its samples hold (a series that changes class inside
      a window gives the majority class, never a mean of labels).
    * ``"regression"``: any numeric values. Whole-number labels pass too: binary or ordinal codes
      (correct 0/1, contrast level 1/2/3, a confidence rating) are numbers a regression may
      predict, and a nominal code cannot be told from them by its values.

    Args:
        recording: the :class:`~hf_neuroformer.recording.SpikeRecording`.
        target: the :class:`DecodingTarget`.

    Returns:
        one line naming what was found and what the kind expects, or None.

    Raises:
        DecodingTargetError: the target is not in the recording (lists the available ones),
            non-numeric trial labels, a 2-D series without ``column``.
    """
    vals, unit, _ = _raw_values(recording, target)
    return _values_problem(target, vals, unit, boolean=_is_bool_column(recording, target))


def _values_problem(target: DecodingTarget, vals, unit, boolean: bool = False) -> Optional[str]:
    """:func:`kind_problem` on values already read (``_raw_values``); ``boolean``: they are False /
    True (a boolean series, whose values are stored as 0.0 / 1.0), and are named so."""
    v = np.asarray(vals, dtype=np.float64).reshape(-1)
    n_samples = v.size
    v = v[np.isfinite(v)]
    if n_samples and not v.size:  # any kind: samples, none of them a value (a series without samples is named later)
        return (f"all {n_samples} values are NaN (no finite value): nothing to decode; choose a variable with values in "
                "the recording (or epoch)")
    if v.size and v.min() == v.max():  # any kind: one value says nothing about the windows
        # False, as a bool column or series wrote it
        first = bool(v[0]) if boolean or np.asarray(vals).dtype == bool else _scalar(v[0])
        return (f"all {v.size} finite values equal {first}, a constant: nothing to decode; choose a variable "
                "that changes over the recording (or epoch)")
    whole = v.size > 0 and bool(np.all(v % 1 == 0))
    if target.kind == "circular":
        if problem := radians_problem(vals, unit):
            return problem
        if whole:
            u = np.unique(v)
            return (f"expected angles in radians, a numeric series such as a head direction, but all "
                    f"{v.size} values are whole numbers ({len(u)} distinct: {_head(u)}), class labels or condition "
                    "codes rather than angles; decode class labels as kind 'classification'")
    elif target.kind == "classification" and v.size and not whole:
        frac = np.unique(v[v % 1 != 0])
        return (f"expected class labels (whole numbers), but {frac.size} of its {np.unique(v).size} distinct values are "
                f"not whole numbers (e.g. {_head(frac, 5)}), a continuous variable; decode it as kind 'regression' "
                "(or 'circular' for angles in radians)")
    return None


def target_values(recording, target: DecodingTarget, starts: np.ndarray, current_window: float,
                  bounds: Optional[np.ndarray] = None, *, stacklevel: int = 2) -> np.ndarray:
    """``(n_windows,)`` float64 value of ``target`` in each current window starting at ``starts``
    (s), NaN where undefined (rules in the module docstring). Classification labels are the raw
    labels (not yet class indices): a sampled series gives the label most of the window's samples
    hold, never a mean of labels.

    Args:
        bounds: optional ``(n_windows, 2)`` float64 ``[start, stop)`` s per window (its split
            segment, :func:`hf_neuroformer.windows.window_segments`): a window with no sample
            inside takes the nearest sample only from inside its bounds (within 1 ns at the start),
            else it is undefined. None: any sample close enough (no split plan to respect).
            Trial-column targets ignore it (a window's label is that of the trial it starts in;
            of overlapping trials, the one that starts last).
        stacklevel: where the warning points, as ``warnings.warn`` takes it (2: the caller of this
            function; a public function calling it passes 3, its own caller's line).

    Raises:
        DecodingTargetError: the target is not in the recording (lists the available ones), a
            2-D series without ``column``, or a kind its values do not fit (:func:`kind_problem`:
            a circular target not in radians or made of whole-number labels, a classification
            target with values that are not whole numbers).
        ValueError: ``bounds`` not of shape ``(n_windows, 2)``.

    Warns:
        UserWarning: a trial-column target with windows that start inside more than one trial
            (overlapping trials), with their count.
    """
    starts = np.asarray(starts, dtype=np.float64)
    if bounds is not None:
        bounds = np.asarray(bounds, dtype=np.float64)
        if bounds.shape != (starts.size, 2):
            raise ValueError(f"bounds: expected shape ({starts.size}, 2), one [start, stop) per window, "
                             f"got {bounds.shape}")
    vals, unit, ts = _raw_values(recording, target)
    if problem := _values_problem(target, vals, unit, boolean=_is_bool_column(recording, target)):
        raise DecodingTargetError(f"target {target.label!r} ({target.kind}): {problem}")
    if ts is None:  # a trial column
        idx = trial_at(recording.trials, starts)  # 1 ns tolerance: window starts lie on that grid
        # trials holding each start: the latest-starting one gave the label without a word, though the
        # window may have been cut from (and its spikes belong as much to) an earlier, overlapping trial
        n_in = trials_holding(recording.trials, starts)
        if np.any(n_in > 1):
            n_many = int(np.sum(n_in > 1))
            warnings.warn(f"target {target.label!r}: {n_many} of {len(starts)} windows "
                          f"{'starts' if n_many == 1 else 'start'} inside "
                          "more than one trial (the recording's trials overlap); each takes the label of the trial "
                          "that starts last, which need not be the trial it was cut from: give trials that do not "
                          "overlap to decode a label per trial", UserWarning, stacklevel=stacklevel)
        out = np.full(len(starts), np.nan)
        ok = idx >= 0
        out[ok] = vals[idx[ok]].astype(np.float64)
        return out
    out = np.full(len(starts), np.nan)
    if ts.size == 0:
        return out
    finite = np.isfinite(vals)
    circ = target.kind == "circular"
    comps = [np.where(finite, np.cos(vals), 0.0), np.where(finite, np.sin(vals), 0.0)] if circ else [np.where(finite, vals, 0.0)]
    csum = [np.concatenate([[0.0], np.cumsum(c)]) for c in comps]
    ccount = np.concatenate([[0], np.cumsum(finite)])
    # the tokenizer's window edges (1 ns grid): a sample on the edge of two tiled windows is in the later one only
    lo = np.searchsorted(ts, on_time_grid(starts), side="left")
    hi = np.searchsorted(ts, window_ends(starts, current_window), side="left")
    n = ccount[hi] - ccount[lo]
    inside = n > 0
    if target.kind == "classification":
        # the most frequent label: the mean of labels 0 and 2 is 1, a class that was never there, and a
        # window holding a class change gave a fraction, which was refused as a continuous series
        out[inside] = _window_majority(ts, vals, finite, lo, hi, starts + current_window / 2)[inside]
    else:
        means = [(c[hi] - c[lo])[inside] / n[inside] for c in csum]
        out[inside] = np.arctan2(means[1], means[0]) if circ else means[0]
    # no sample inside: the nearest finite sample to the window centre, if close enough and (with
    # bounds) inside the window's own split segment, never one across a split boundary
    rest = np.flatnonzero(~inside)
    if rest.size:
        fts, fv = ts[finite], vals[finite]
        if fts.size:
            tol = max(current_window, 2.0 * float(np.median(np.diff(ts)))) if ts.size > 1 else current_window
            centre = starts[rest] + current_window / 2
            j = np.clip(np.searchsorted(fts, centre), 1, max(fts.size - 1, 1))
            # the nearest finite sample on each side of the centre: if the one on a side lies
            # outside the bounds, so does every sample further out on that side
            cand = np.stack([np.clip(j - 1, 0, fts.size - 1), np.clip(j, 0, fts.size - 1)], 1)
            dist = np.abs(fts[cand] - centre[:, None])
            if bounds is not None:
                lo, hi = bounds[rest, :1], bounds[rest, 1:]
                dist = np.where((fts[cand] >= lo - WINDOW_GRID) & (fts[cand] < hi), dist, np.inf)
            pick = np.argmin(dist, 1)
            best = cand[np.arange(len(rest)), pick]
            close = dist[np.arange(len(rest)), pick] <= tol
            out[rest[close]] = fv[best[close]]
    if circ:
        out = np.mod(out + np.pi, 2 * np.pi) - np.pi
    return out


def _window_majority(ts, vals, finite, lo, hi, centre) -> np.ndarray:
    """Per window, the label most of its finite samples ``lo[i]:hi[i]`` hold; of labels tied on
    the count, the one of the sample nearest the window's ``centre``. NaN where it has none.

    ``ts``/``vals``/``finite``: ``(n_samples,)`` sample times (s), labels and finiteness; ``lo``,
    ``hi``, ``centre``: ``(n_windows,)`` sample-index bounds ``[lo, hi)`` and centres (s)."""
    best_n = np.zeros(len(lo), dtype=np.int64)
    best_d = np.full(len(lo), np.inf)
    out = np.full(len(lo), np.nan)
    where = np.flatnonzero(finite)
    labels = np.unique(vals[where])
    # the finite samples grouped by label, each group's sample indices ascending (a frame index has thousands)
    by_label = where[np.argsort(vals[where], kind="stable")]
    cuts = np.searchsorted(vals[by_label], labels, side="left").tolist() + [by_label.size]
    for i, label in enumerate(labels):
        idx = by_label[cuts[i]:cuts[i + 1]]  # sample indices holding this label, ascending
        a, b = np.searchsorted(idx, lo), np.searchsorted(idx, hi)
        count = b - a
        # its sample nearest the centre among those inside the window: the last one before the centre or the next
        last = np.clip(np.maximum(b - 1, a), 0, idx.size - 1)  # (a window without the label is not compared)
        j = np.minimum(np.clip(np.searchsorted(ts[idx], centre), a, None), last)
        near = np.minimum(np.abs(ts[idx[j]] - centre), np.abs(ts[idx[np.maximum(j - 1, np.minimum(a, last))]] - centre))
        better = (count > best_n) | ((count == best_n) & (count > 0) & (near < best_d))
        best_n, best_d = np.where(better, count, best_n), np.where(better, near, best_d)
        out[better] = label
    return out


def _head(values, n: int = 10, label: Optional[Callable] = None) -> str:
    """The first ``n`` values as a list (each as ``label`` writes it, :func:`_scalar` by default), then
    how many more: error messages stay one readable line."""
    shown = [(label or _scalar)(v) for v in values[:n]]
    return f"{shown}" + (f" and {len(values) - n} more" if len(values) > n else "")


def _scalar(v):
    f = float(v)
    return int(f) if f == int(f) else f


def _bool_label(v) -> bool:
    """A class of a bool trial column, read as 0.0 / 1.0 by :func:`target_values`, as the column's label."""
    return bool(v)


def _is_bool_column(recording, target) -> bool:
    """Whether ``target`` is a trial column of dtype bool or a boolean behaviour series
    (``BehaviourSeries.boolean``): its labels are False / True, not 0 / 1."""
    if target.name.startswith("trial:"):
        return np.asarray(_raw_values(recording, target)[0]).dtype == bool
    # a series keeps float64 values: a per-bin True / False series reported its classes as 0 / 1
    return bool(getattr(recording.behaviour.get(target.name), "boolean", False))


def build_decoding_datasets(recording, tokenizer, config, plan, targets: Sequence[DecodingTarget], *,
                            window_mask: Optional[Callable] = None,
                            modality_remedy: Optional[str] = None,
                            stacklevel: int = 2,
                            ) -> Tuple["datasets.DatasetDict", dict]:  # noqa: F821
    """The windows of every split with one ``target_<name>`` column per target.

    Args:
        recording: the :class:`~hf_neuroformer.recording.SpikeRecording`.
        tokenizer, config: as :func:`~hf_neuroformer.windows.build_window_datasets`.
        plan: a :class:`~hf_neuroformer.windows.SplitPlan`, or None for
            :func:`~hf_neuroformer.windows.plan_splits` of the recording.
        targets: the variables to decode. Classification targets get ``num_classes`` and
            ``classes`` set here (in place) from the train split.
        window_mask: optional ``window_mask(recording, starts) -> (n,) bool``; only windows
            where it is True are kept (e.g. running periods); the removed ones are counted. An
            array of other values (floats, such as the speeds themselves; integers other than 0/1)
            is refused rather than read as True wherever it is nonzero.
        modality_remedy: passed to :func:`~hf_neuroformer.windows.build_window_datasets` (what its
            error of a modality no training window holds a value of tells to do).
        stacklevel: where its warnings point, as ``warnings.warn`` takes it (2: the caller of this
            function; ``finetune`` passes 3, its own caller's line).

    Returns:
        ``(DatasetDict, report)``. Columns: those of ``build_window_datasets`` plus
        ``target_<name>``: float64 value (regression), float64 angle in rad in ``[-pi, pi)``
        (circular), int64 class index (classification; float64 class index with NaN when some kept
        window has no label of it). A window is kept when the mask keeps it and at least one
        target has a value there; a target without a value in a kept window is NaN there. Rows
        stay in time order. ``report``:
        ``report[split] = {"n_windows_before", "n_dropped_mask", "n_nan": {name: n},
        "n_unseen_class": {name: n}, "n_dropped", "n_windows", "n_masked_nan": {name: n},
        "n_masked_unseen_class": {name: n},
        "n_windows_target": {name: n}, "n_spikes", "n_truncated_spikes", "n_truncated_past_spikes"}``
        (``n_nan``: windows the mask keeps without a recorded value of the target;
        ``n_unseen_class``, validation and test, classification targets: windows the mask keeps
        whose label the train split never has (a classifier cannot predict it), which then count as
        windows without a value of the target, their labels listed in ``"unseen_classes": {name:
        [label, ...]}`` where there are any; ``n_dropped``: windows without a value of any
        target; ``n_masked_nan``: kept windows where the target is NaN, left out of its loss and
        metrics, ``n_masked_unseen_class`` of them (validation and test, classification targets) those
        of a class the train split lacks; ``n_windows_target``: kept windows with a value of it; the spike counts are over the kept windows: current-window spikes, and those cut
        by ``max_window_length`` / ``max_past_length``; with modalities also
        ``"n_truncated_modality_tokens": {modality: n}``, the tokens, video: frames, beyond
        ``max_tokens`` / ``num_frames`` left out of the kept windows, the earliest), ``report["targets"][name] = {"kind",
        "column", "weight", "mean", "std"}`` (train statistics of the values, NaN left out; the circular mean and
        resultant length for circular targets, and their ``recorded_range_deg``,
        :func:`circular_range_deg` of all the recorded values) plus ``"num_classes"``, ``"classes"`` and the
        train ``"class_counts"`` for classification, and ``report["split_plan"]``.

    Raises:
        TypeError: ``recording`` is not a :class:`~hf_neuroformer.recording.SpikeRecording` (a path:
            the message says to read it with :func:`hf_neuroformer.io.load_recording`).
        DecodingTargetError: a target missing from the recording (the message lists the
            available ones), a target that the config also reads as an input modality, fewer than 2
            classes in train, no or duplicate target names, two targets reading the same column of one
            variable (:func:`check_each_column_once`: ``x`` and ``x[0]`` of a 1-D ``x``), or a
            train split left without a window with a value of some target.
        ValueError: ``window_mask`` returned another shape than one flag per window of a split, or values
            other than bools (or 0/1 integers).

    Warns:
        UserWarning: a regression target that is a series in radians whose training values
            span more than pi, or in degrees more than 180 (it wraps; decode it as ``"circular"``); validation or test windows
            of a class label the train split does not have (naming the labels, split and count:
            ``n_unseen_class``).
    """
    import datasets

    from .recording import check_is_recording

    check_is_recording(recording)  # a path failed as "'str' object has no attribute 'behaviour'"
    targets = list(targets)
    if not targets:
        raise DecodingTargetError("targets: expected at least one DecodingTarget")
    check_each_column_once(targets)  # x and x[0] of a 1-D x: one column decoded twice
    names = [t.label for t in targets]
    if len(set(names)) != len(names):  # a 1-D series named 'head[0]' and column 0 of a 2-D 'head'
        raise DecodingTargetError(f"targets: expected distinct names (name[column] for a column), got {names}")
    check_table_columns(targets)  # test_predictions.csv is written after training: refuse before it
    for t in targets:  # fail on a missing target before tokenizing anything
        target_values(recording, t, np.zeros(0), config.current_window)
        source = t.name if t.name.startswith("trial:") else f"behaviour:{t.name}"
        for mod in config.modalities or []:
            if mod.get("source") == source:
                raise DecodingTargetError(
                    f"target {t.label!r}: the model reads {source!r} as its input modality {mod['name']!r}, so it would "
                    "decode the answer it is given; decode another variable, or use a model without that modality"
                )
    dsd, plan = build_window_datasets(recording, tokenizer, config, plan,
                                      modality_remedy=modality_remedy, stacklevel=stacklevel + 1)
    report: Dict[str, object] = {"split_plan": plan.to_dict()}
    values: Dict[str, Dict[str, np.ndarray]] = {}
    keep: Dict[str, np.ndarray] = {}
    train_classes: Dict[str, np.ndarray] = {}  # of each classification target: the labels of the train split
    unseen_labels: Dict[Tuple[str, str], np.ndarray] = {}  # (split, target): its labels that train lacks
    for split in SPLITS:
        starts = column_values(dsd[split], "window_start")
        n0 = len(starts)
        m = np.ones(n0, dtype=bool)
        if window_mask is not None and n0:
            raw = np.asarray(window_mask(recording, starts)).reshape(-1)
            if raw.shape != (n0,):
                raise ValueError(f"window_mask: expected a ({n0},) bool array for the {split} windows, got shape "
                                 f"{raw.shape}")
            if raw.dtype != bool and not (raw.dtype.kind in "iu" and np.isin(raw, (0, 1)).all()):
                # read as bool, every nonzero value (a speed returned instead of speed > threshold) and NaN kept
                # its window, without a word
                raise ValueError(f"window_mask: expected a ({n0},) bool array (True: keep the window) for the {split} "
                                 f"windows, got dtype {raw.dtype} (first values {raw[:3].tolist()}); return a "
                                 "comparison, e.g. speed > 5")
            m = raw.astype(bool)
        # a window's value is read from its own split segment (trial, in trial mode) only
        bounds = window_segments(plan, split, starts, column_values(dsd[split], "past_clip_start"))
        vals = {}
        # not a comprehension: its frame (Python < 3.12) made the warnings point here
        for t in targets:
            vals[t.label] = target_values(recording, t, starts, config.current_window, bounds,
                                          stacklevel=stacklevel + 1)
        nan = {name: int(np.sum(m & ~np.isfinite(v))) for name, v in vals.items()}
        unseen_n: Dict[str, int] = {}
        unseen_at: Dict[str, np.ndarray] = {}  # the windows of each target's unseen classes
        for t in targets:  # a class of validation / test that train lacks: no value of the target there, counted
            if t.kind != "classification":
                continue
            v = vals[t.label]
            if split == "train":
                train_classes[t.label] = np.unique(v[m & np.isfinite(v)])
                continue
            unseen = m & np.isfinite(v) & ~np.isin(v, train_classes[t.label])
            unseen_n[t.label], unseen_at[t.label] = int(unseen.sum()), unseen
            if unseen.any():
                unseen_labels[(split, t.label)] = np.unique(v[unseen])
                vals[t.label] = np.where(unseen, np.nan, v)
        # a window is kept when it has a value for at least one target: with several targets, one
        # target's gap (tracking lost for x) no longer takes the windows of the others (ry) away
        ok = m & np.any([np.isfinite(v) for v in vals.values()], axis=0) if n0 else m.copy()
        kept = np.flatnonzero(ok)
        col = lambda name: column_values(dsd[split], name, np.int64)[kept] if len(kept) else np.zeros(0, np.int64)  # noqa: E731
        report[split] = {"n_windows_before": int(n0), "n_dropped_mask": int(np.sum(~m)), "n_nan": nan,
                         "n_unseen_class": unseen_n, "n_dropped": int(np.sum(m & ~ok)), "n_windows": int(np.sum(ok)),
                         "n_masked_nan": {name: int(np.sum(ok & ~np.isfinite(v))) for name, v in vals.items()},
                         # of those, the windows kept for another target (the others of n_unseen_class are dropped)
                         "n_masked_unseen_class": {name: int(np.sum(ok & u)) for name, u in unseen_at.items()},
                         "n_windows_target": {name: int(np.sum(ok & np.isfinite(v))) for name, v in vals.items()},
                         # of the windows kept: spikes that did not fit max_window_length / max_past_length
                         "n_spikes": int(col("n_spikes").sum()), "n_truncated_spikes": int(col("n_truncated").sum()),
                         "n_truncated_past_spikes": int(col("n_past_truncated").sum())}
        if config.modalities:  # tokens (video: frames) beyond max_tokens / num_frames, as train counts them
            report[split]["n_truncated_modality_tokens"] = {
                mod["name"]: int(col(modality_column_names(mod)[2]).sum()) for mod in config.modalities}
        values[split], keep[split] = {k: v[ok] for k, v in vals.items()}, ok
    # a target with no value in any training window has nothing to learn from (with several targets, the
    # windows kept for the others do not help it): refused, naming it
    empty = [t for t in targets if report["train"]["n_windows_target"][t.label] == 0]
    if empty:
        why = []
        for t in empty:  # say which target is undefined everywhere, and why when it can be told
            if t.name.startswith("trial:") or t.name not in recording.behaviour:
                continue
            ts = np.asarray(recording.behaviour[t.name].timestamps, dtype=np.float64)
            td = recording.time_domain
            if ts.size == 0:
                why.append(f"{t.name!r} has no samples in this recording (epoch)"
                           + ("; it is also an event stream (recording.events): decode a behaviour series or a "
                              "trial column" if t.name in (recording.events or {}) else ""))
            elif td is not None and not np.any((ts >= td[0]) & (ts < td[1])):
                # Unix-time samples beside spikes from 0: the report gave only the counts
                why.append(f"{t.name!r} has its {ts.size} samples at {ts[0]:.3f}-{ts[-1]:.3f} s, none inside the "
                           f"recorded time {td[0]:.3f}-{td[1]:.3f} s: another clock? (NWB times are seconds from "
                           "session_start_time; shift the series onto the spikes' clock)")
        raise DecodingTargetError(f"targets {[t.label for t in empty]}: no training window left with a value of "
                                  f"{'this target' if len(empty) == 1 else 'these targets'} after the window mask "
                                  f"({report['train']})" + ("; " + "; ".join(why) if why else ""))
    tinfo: Dict[str, dict] = {}
    for t in targets:
        tr = values["train"][t.label]
        tr = tr[np.isfinite(tr)]  # the statistics of the windows where it is recorded
        info = {"kind": t.kind, "column": t.column, "weight": float(t.weight)}
        unit = _raw_values(recording, t)[1]
        if unit:  # the behaviour series' unit, kept in the decoder's config so decode can compare it
            info["unit"] = str(unit)
        if t.kind == "classification":
            classes = np.unique(tr)
            # target_values reads a bool trial column as 0.0 / 1.0: its classes, refusals and warnings said 0 and 1
            # where the user wrote False and True; classes keep the column's labels (index i means classes[i], and
            # [False, True] == [0, 1], so a decoder saved with classes [0, 1] reads the same)
            label = _bool_label if _is_bool_column(recording, t) else _scalar
            if np.any(classes % 1 != 0):
                frac = classes[classes % 1 != 0]
                raise DecodingTargetError(
                    f"target {t.label!r} (classification): {len(classes)} distinct training values, {len(frac)} of them "
                    f"not whole numbers (e.g. {[_scalar(v) for v in frac[:5]]}); classification needs class labels: "
                    "decode it as kind 'regression' (or 'circular' for angles in radians)"
                )
            if len(classes) < 2:
                raise DecodingTargetError(
                    f"target {t.label!r}: the train split has {len(classes)} {'class' if len(classes) == 1 else 'classes'} "
                    f"{[label(c) for c in classes]}; "
                    "classification needs at least 2"
                )
            for split in SPLITS[1:]:  # left out above (no value of the target there), counted, said
                if (split, t.label) in unseen_labels:
                    k, labels = report[split]["n_unseen_class"][t.label], unseen_labels[(split, t.label)]
                    report[split].setdefault("unseen_classes", {})[t.label] = [label(c) for c in labels]
                    warnings.warn(
                        f"target {t.label!r}: {count_noun(k, f'{split} window')} {'holds' if k == 1 else 'hold'} "
                        f"{'label' if len(labels) == 1 else 'labels'} {_head(labels, label=label)} that the train "
                        f"split never has (train classes {_head(classes, label=label)}); a classifier cannot predict them, so they are "
                        f"left out of this target's {'checkpoint choice and ' if split == 'validation' else ''}"
                        "metrics, as windows without a value (counted in decoding_report.json, n_unseen_class); to "
                        "score them, merge those labels into trained ones or decode a recording whose train split "
                        "holds them", UserWarning, stacklevel=stacklevel
                    )
            t.classes = [label(c) for c in classes]
            t.num_classes = len(classes)
            for split in SPLITS:  # class indices; NaN stays NaN (a window without this label)
                v = values[split][t.label]
                index = np.searchsorted(classes, np.where(np.isfinite(v), v, classes[0])).astype(np.int64)
                values[split][t.label] = index if np.isfinite(v).all() else np.where(np.isfinite(v), index, np.nan)
            info.update(num_classes=t.num_classes, classes=list(t.classes),
                        class_counts=np.bincount(np.searchsorted(classes, tr), minlength=t.num_classes).tolist())
        elif t.kind == "circular":
            c, s = float(np.mean(np.cos(tr))), float(np.mean(np.sin(tr)))
            info.update(mean=math.atan2(s, c), resultant_length=math.hypot(c, s),
                        recorded_range_deg=circular_range_deg(_raw_values(recording, t)[0]))
        else:
            info.update(mean=float(np.mean(tr)), std=float(np.std(tr)))
            _warn_if_wrapping_angle(recording, t, tr, stacklevel=stacklevel + 1)
        tinfo[t.label] = info
    report["targets"] = tinfo
    out = {}
    for split in SPLITS:
        ds = dsd[split]
        if not keep[split].all():
            ds = ds.select(np.flatnonzero(keep[split]))
        for t in targets:
            v = values[split][t.label]
            whole = t.kind == "classification" and all(np.isfinite(values[s][t.label]).all() for s in SPLITS)
            feat = datasets.Value("int64") if whole else datasets.Value("float64")
            ds = ds.add_column(t.column_name, v.tolist(), feature=feat)
        out[split] = ds
    return datasets.DatasetDict(out), report


def _warn_if_wrapping_angle(recording, target: DecodingTarget, train_values: np.ndarray,
                            stacklevel: int = 2) -> None:
    """Warn when a regression target is a behaviour series in radians whose training values span
    more than pi (in degrees, more than 180): it wraps, so MSE and R² take nearly equal angles near
    0 and 2 pi as far apart (``stacklevel`` as ``warnings.warn`` takes it)."""
    if target.name.startswith("trial:") or target.name not in recording.behaviour or train_values.size == 0:
        return
    unit = recording.behaviour[target.name].unit.strip().lower()
    span = float(np.ptp(train_values))
    if unit in ("rad", "radian", "radians") and span > math.pi:
        warnings.warn(
            f"target {target.label!r} (regression): the series is in {unit} and its training values span {span:.3f} "
            "rad (more than pi), so it wraps: a regression takes nearly equal angles at both ends of the range as far "
            "apart; decode it as kind 'circular' (--kind circular), unless it is not an angle",
            UserWarning, stacklevel=stacklevel
        )
    elif unit_is_degrees(unit) and span > 180:  # the default kind of a series in degrees is regression
        warnings.warn(
            f"target {target.label!r} (regression): the series is in {unit} and its training values span {span:.1f} "
            "degrees (more than 180), so it wraps: a regression takes nearly equal angles at both ends of the range "
            "as far apart; convert it to radians (np.deg2rad) and decode it as kind 'circular' (--kind circular), "
            "unless it is not an angle", UserWarning, stacklevel=stacklevel
        )


def fraction_of_train(ds_train, fraction: float):
    """The first contiguous block (in time order) holding ``round(fraction * n)`` (>= 1)
    training windows.

    Raises:
        ValueError: ``fraction`` not in ``(0, 1]`` or an empty dataset.
    """
    if not (is_real_number(fraction) and 0 < fraction <= 1):
        raise ValueError(f"fraction: expected a number in (0, 1], got {fraction!r}")
    n = len(ds_train)
    if n == 0:
        raise ValueError("fraction_of_train: the training split has no windows")
    k = max(1, int(round(fraction * n)))
    if k >= n:
        return ds_train
    order = np.argsort(column_values(ds_train, "window_start"), kind="stable")
    return ds_train.select(np.sort(order[:k]))


def balanced_class_weights(class_index: np.ndarray, num_classes: int, target: Optional[str] = None) -> List[float]:
    """Per-class weights ``n / (k * n_c)`` of scikit-learn's ``class_weight="balanced"``.

    Args:
        class_index: ``(n,)`` int class indices of the training windows used.
        num_classes: classes of the head (those of the whole train split).
        target: the target's label, named in the errors (:func:`target_dicts` passes it).

    Returns:
        ``num_classes`` floats: ``n / (k * n_c)`` for the ``k`` classes present (``n_c > 0``);
        0.0 for a class with no window here (a few-shot block may lack one; no weight can be
        estimated and no training window carries it). Over the ``n`` windows the weights average
        to 1, so the weighted loss keeps the scale of the unweighted one.

    Raises:
        ValueError: empty input (no training window with a value of the target, e.g. a few-shot
            block without one) or an index outside ``[0, num_classes)``.
    """
    y = np.asarray(class_index, dtype=np.int64).reshape(-1)
    of = "" if target is None else f"target {target!r}: "
    if y.size == 0:
        raise ValueError(f"{of}class_index: expected at least one training window with a value of the target, got none "
                         "(a few-shot block, fraction, may hold none of its values): no balanced class weight can be "
                         "estimated; use a larger fraction, or decode it alone")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"{of}class_index: expected indices in [0, {num_classes}), got {int(y.min())}..{int(y.max())}")
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = y.size / (present.sum() * counts[present])
    return [float(v) for v in w]


def circular_range_deg(values) -> List[float]:
    """The convention of a circular target's recorded angles, as the range in degrees that
    :func:`~hf_neuroformer.plotting.plot_decoding` draws them in: ``[0.0, 360.0]`` when every
    finite value of ``values`` (the target's raw samples in radians, before any wrapping: a
    behaviour series' column or a trial column) is >= 0, i.e. the angle is recorded in
    ``[0, 2 pi)`` (A2929's ``ry``), else ``[-180.0, 180.0]`` (recorded in ``[-pi, pi)``; also for
    no finite value). The window labels, predictions and metrics are wrapped to ``[-pi, pi)``
    whatever the convention, so the sign of the wrapped values cannot tell it.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return [0.0, 360.0] if v.size and v.min() >= 0 else [-180.0, 180.0]


def training_values(train_ds, target: DecodingTarget, fraction: Optional[float] = None) -> np.ndarray:
    """The finite values of ``target``'s column in ``train_ds`` (NaN: a window kept for another
    target without a value of this one): what :func:`target_dicts` and
    :func:`~hf_neuroformer.finetuning.target_notes` take a target's training statistics from.
    ``fraction`` (the few-shot share that chose ``train_ds``), when given, is named in the error.

    Raises:
        DecodingTargetError: none of the rows has a value of ``target`` (e.g. a few-shot block
            that falls in its tracking gap): its statistics, and a head, would be undefined."""
    v = column_values(train_ds, target.column_name)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise DecodingTargetError(
            f"target {target.label!r}: none of the {len(train_ds)} training windows used"
            + ("" if fraction is None else f" (the first block of fraction {fraction:g} of the train split)")
            + " has a value of it (they were kept for the other targets), so it has nothing to learn from; use a larger fraction, or decode it alone")
    return v


def target_dicts(targets: Sequence[DecodingTarget], report: dict, train_ds=None) -> List[dict]:
    """The ``config.decoding_targets`` entries of ``targets``: name, kind, column, weight, and
    the train statistics the heads need (regression ``mean``/``std``; classification
    ``num_classes``/``classes``, ``class_weight`` and ``class_weights``); ``unit`` (a behaviour
    series' unit, when it has one: ``neuroformer decode`` compares it with a recording's); circular:
    ``recorded_range_deg`` (:func:`circular_range_deg`, the range the figures draw it in). With ``train_ds``
    (e.g. a few-shot fraction of train) the regression statistics and the class weights are
    those of its rows instead of the whole train split's (the baselines fit on the same rows);
    statistics are always over the windows where the target has a value (NaN ones left out).

    Classification: ``class_weights`` is :func:`balanced_class_weights` of the training rows
    when ``class_weight == "balanced"``, else None (plain cross-entropy). Regression with
    ``loss="hl_gauss"``: also ``loss``, ``num_bins``, ``hl_gauss_sigma_ratio`` and ``bin_range``
    (the outer bin edges in standardised units: the training rows' standardised min and max, each
    widened by 3 sigma, :func:`~hf_neuroformer.argument_checks.hl_gauss_bin_range`; stored, so a
    saved decoder reloads with the same bins); an MSE target's entry is as before (no ``loss`` key).

    Raises:
        DecodingTargetError: with ``train_ds``, a target without a value in any of its rows;
            without it, a ``"hl_gauss"`` target (its bins need the training values)."""
    out = []
    for t in targets:
        info = report["targets"][t.label]
        v = None if train_ds is None else training_values(train_ds, t)
        d = {"name": t.name, "kind": t.kind, "column": t.column, "weight": float(t.weight)}
        if info.get("unit"):
            d["unit"] = info["unit"]
        if t.kind == "classification":
            k = int(info["num_classes"])
            d.update(num_classes=k, classes=list(info["classes"]), class_weight=t.class_weight, class_weights=None)
            if t.class_weight == "balanced":
                if v is not None:
                    y = v.astype(np.int64)
                else:
                    y = np.repeat(np.arange(k), np.asarray(info["class_counts"], dtype=np.int64))
                d["class_weights"] = balanced_class_weights(y, k, target=t.label)
        elif t.kind == "circular" and info.get("recorded_range_deg") is not None:
            d["recorded_range_deg"] = list(info["recorded_range_deg"])  # what plot_decoding draws in
        elif t.kind == "regression":
            mean, std = info["mean"], info["std"]
            if v is not None:
                mean, std = float(v.mean()), float(v.std())
            d.update(mean=float(mean), std=float(std) if std > 1e-12 else 1.0)
            if t.loss == "hl_gauss":  # the bins hold every standardised training value, 3 sigma inside the edges
                if v is None:
                    raise DecodingTargetError(f"target {t.label!r}: loss 'hl_gauss' places its bins over the training "
                                              "values: pass train_ds")
                z = (v - d["mean"]) / d["std"]
                d.update(loss="hl_gauss", num_bins=t.num_bins, hl_gauss_sigma_ratio=t.hl_gauss_sigma_ratio,
                         bin_range=list(hl_gauss_bin_range(float(z.min()), float(z.max()), t.num_bins,
                                                           t.hl_gauss_sigma_ratio)))
        out.append(d)
    return out


#: Columns of a prediction table that belong to no target: :func:`prediction_table`'s window
#: times and the columns ``neuroformer decode`` (:func:`~hf_neuroformer.finetuning.decode_windows`) adds.
TABLE_COLUMNS = ("window_start_s", "window_stop_s", "n_spikes", "n_truncated", "split")


def check_table_columns(targets) -> None:
    """Refuse targets whose prediction-table columns would collide: a target labelled like one of
    :data:`TABLE_COLUMNS` (a behaviour named ``split`` or ``n_spikes``), or like another target's
    ``<label>_predicted`` / ``<label>_error_rad`` column (targets ``x`` and ``x_predicted``).
    Without this, one column silently replaced the other in ``test_predictions.csv`` and in
    ``neuroformer decode``'s CSV (the recorded ``split`` values became the split names).

    Args:
        targets: :class:`DecodingTarget` objects or ``config.decoding_targets`` dicts (``name``,
            ``column``).

    Raises:
        DecodingTargetError: naming the target and the column it collides with.
    """
    owner: Dict[str, str] = {c: "the table's own column" for c in TABLE_COLUMNS}
    for t in targets:
        name, column = (t.name, t.column) if isinstance(t, DecodingTarget) else (t["name"], t.get("column"))
        label = target_label(name, column)
        for col in (label, f"{label}_predicted", f"{label}_error_rad"):
            if col in owner:
                raise DecodingTargetError(
                    f"target {label!r}: its prediction-table column {col!r} is also {owner[col]}; a table can hold "
                    f"only one of them: decode a variable under another name (reserved: {', '.join(TABLE_COLUMNS)}, "
                    "and <target>_predicted / <target>_error_rad of another target)")
            owner[col] = f"a column of target {label!r}"


def prediction_table(window_start, current_window: float, predictions, targets: Sequence[dict], recorded=None):
    """One row per decoded window: when it is, what the decoder predicted and (given) what was recorded.

    Args:
        window_start: ``(n,)`` current-window starts, s.
        current_window: the window length, s (``window_stop_s`` = start + this).
        predictions: ``(n, n_targets)`` the decoder's ``predictions`` in the targets' order:
            values in the behaviour's unit, class indices, angles in radians.
        targets: the ``config.decoding_targets`` dicts (``name``, ``column``, ``kind``,
            ``classes``), in the model's order.
        recorded: optional ``(n, n_targets)`` float recorded values (:func:`target_values`):
            the behaviour's unit, the class labels themselves (not indices), radians; NaN where
            undefined (an empty cell in a CSV).

    Returns:
        a :class:`pandas.DataFrame` sorted by time with ``window_start_s``, ``window_stop_s`` and,
        per target label (``position[0]``, ``ry``, ``trial:choice``), ``<label>`` (recorded, with
        ``recorded``) and ``<label>_predicted`` (classification: the class label, not its index;
        circular: ``atan2``'s angle in (-pi, pi]); a circular target with ``recorded`` also gets
        ``<label>_error_rad``, predicted minus recorded wrapped to [-pi, pi). ``finetune`` writes
        it as ``test_predictions.csv``, ``neuroformer decode`` as its ``--output``.

    Raises:
        ValueError: shapes that do not match ``targets``, or a predicted class index outside
            ``classes``.
        DecodingTargetError: targets whose columns collide (:func:`check_table_columns`).
    """
    import pandas as pd

    check_table_columns(targets)
    t = np.asarray(window_start, dtype=np.float64).reshape(-1)
    n, k = len(t), len(targets)

    def table(a, what):
        a = np.asarray(a, dtype=np.float64).reshape(n, -1) if n else np.zeros((0, k))
        if a.shape != (n, k):
            raise ValueError(f"{what}: expected shape ({n}, {k}) for {n} windows and {k} targets, got {a.shape}")
        return a

    p = table(predictions, "predictions")
    y = None if recorded is None else table(recorded, "recorded")
    order = np.argsort(t, kind="stable")
    # stops on the 1 ns window grid (705.8, not 705.8000000000001)
    cols = {"window_start_s": t[order], "window_stop_s": window_ends(t[order], float(current_window))}
    for j, target in enumerate(targets):
        label = target_label(target["name"], target.get("column"))
        pred = p[order, j]
        rec = None if y is None else y[order, j]
        if target["kind"] == "classification":
            classes = list(target["classes"])
            if np.any((pred < 0) | (pred >= len(classes)) | (pred % 1 != 0)):
                raise ValueError(f"predictions of {label!r}: expected class indices in [0, {len(classes)})")
            if rec is not None:  # the label as the decoder's classes write it (1, not 1.0), else as recorded
                whole = all(isinstance(c, numbers.Integral) for c in classes)  # an unseen 2 is written 2, not 2.0
                cols[label] = [None if not np.isfinite(v) else next((c for c in classes if c == v),
                                                                    int(v) if whole and v == int(v) else v) for v in rec]
            cols[f"{label}_predicted"] = [classes[int(i)] for i in pred]
        else:
            if rec is not None:
                cols[label] = rec
            cols[f"{label}_predicted"] = pred
            if target["kind"] == "circular" and rec is not None:
                cols[f"{label}_error_rad"] = (pred - rec + np.pi) % (2 * np.pi) - np.pi
    return pd.DataFrame(cols)


class DecodingCollator(NeuroformerCollator):
    """:class:`~hf_neuroformer.windows.NeuroformerCollator` plus the decoding targets.

    Output: the window tensors of the parent (``modality_inputs`` too, given the config's
    ``modalities``), with its next-spike labels renamed ``token_labels`` (``dt_labels`` kept), and
    ``labels`` ``(B, n_targets)`` float32 = the ``target_<name>`` columns in target order (class
    indices as floats; NaN where a window has no value of that target, which the model leaves
    out of that target's loss). With no ``target_columns`` (a decoder's ``processor.collator``, for windows
    without targets, e.g. to predict) there is no ``labels``.
    """

    def __init__(self, target_columns: Sequence[str], pad_token_id: int = 0, bos_token_id: int = 1, eos_token_id: int = 2,
                 modalities=None, vocab_size: Optional[int] = None, tokenizer=None,
                 model_vocab_size: Optional[int] = None):
        super().__init__(pad_token_id, bos_token_id, eos_token_id, modalities=modalities, vocab_size=vocab_size,
                         tokenizer=tokenizer, model_vocab_size=model_vocab_size)
        self.target_columns = list(target_columns)

    def __call__(self, examples):
        """Pad ``examples`` (window rows with ``target_<name>`` columns, or a mapping of such
        columns, :meth:`~hf_neuroformer.windows.NeuroformerCollator.rows`) into the batch tensors
        listed in the class docstring."""
        import torch

        examples = self.rows(examples)  # a mapping of columns (a dataset slice): rows, for the targets below
        batch = super().__call__(examples)
        batch["token_labels"] = batch.pop("labels")
        if not self.target_columns:
            return batch
        batch["labels"] = torch.tensor([[float(e[c]) for c in self.target_columns] for e in examples],
                                       dtype=torch.float32)
        return batch


__all__ = [
    "prediction_table",
    "circular_range_deg",
    "check_table_columns",
    "TABLE_COLUMNS",
    "DecodingTarget",
    "DecodingTargetError",
    "DecodingCollator",
    "available_targets",
    "check_each_column_once",
    "expand_columns",
    "parse_target_label",
    "target_label",
    "infer_kind",
    "kind_problem",
    "target_values",
    "build_decoding_datasets",
    "fraction_of_train",
    "target_dicts",
    "balanced_class_weights",
    "KINDS",
    "CLASS_WEIGHTS",
    "check_targets_sampled",
    "training_values",
]
