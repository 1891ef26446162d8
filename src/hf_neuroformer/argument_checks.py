"""Allowed values, and the checks of them, that the ``neuroformer`` command applies before torch is imported.

The standard library only, on purpose: the console script (``hf_neuroformer_entry``) loads this
module and ``cli.py`` without importing the package, whose ``__init__`` imports torch and
transformers (5-10 s of CPU), so that a refused ``--kind``, ``--set`` key, sampling value, step
count, ``--ci-block-s``, ``--batch-size``, ``--min-isis`` or a malformed ``finetune --target`` item
is answered at once. The library
modules that use these values import them from here (one definition):
:mod:`~hf_neuroformer.decoding` and :mod:`~hf_neuroformer.metrics.decoding` (:data:`KINDS`;
:func:`target_label_form`, the form check of ``decoding.parse_target_label``),
:mod:`~hf_neuroformer.finetuning` (:data:`FINETUNE_CONFIG_KEYS`, :func:`config_settings`,
:func:`override_keys`, :func:`check_finetune_settings`, :func:`check_ema_decay`, :func:`check_spike_dropout`),
:mod:`~hf_neuroformer.generation` (:data:`SEED_RANGE`, :func:`check_sampling_ranges`),
:mod:`~hf_neuroformer.simulation` (:data:`MAX_CLI_DURATION`, :data:`MAX_BRIAN2_SEED`,
:func:`as_dataclass`), :mod:`~hf_neuroformer.stimuli` (:func:`as_dataclass`),
:mod:`~hf_neuroformer.metrics.bootstrap` (:func:`check_block_s`),
:mod:`~hf_neuroformer.metrics.fidelity` (:func:`check_whole`, :func:`check_min_isis`, :func:`check_bin_size`,
:func:`check_min_coverage`, :func:`check_spike_tolerances`, :func:`tolerance_label`) and :mod:`~hf_neuroformer.analysis._batches` (:func:`check_pass_counts`), and
:mod:`~hf_neuroformer.training` (:func:`is_main_rank`, which the command also reads before torch, and
:data:`MAX_TRAINING_SEED`).

:func:`check_model_kind`, the refusal of a model of the wrong kind (a path, the backbone, a decoder where
spikes are generated, ...), compares class names only, so it needs no torch either; it is the one check
behind :func:`~hf_neuroformer.generation.check_next_spike_model`,
:func:`~hf_neuroformer.finetuning.check_decoder_model` and
:func:`~hf_neuroformer.analysis._batches.check_attention_model`.

:func:`is_whole_number`, :func:`is_real_number` and :func:`is_finite_number` are also imported by
:mod:`~hf_neuroformer.configuration_neuroformer`, which is Hub remote code: so this module travels
with every pushed model as remote code too (transformers copies the modules a remote module imports
relatively), and must keep importing nothing but the standard library and no other module of the
package.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
import re
from collections.abc import Mapping
from typing import Callable, Dict

#: Kinds of a decoding target (:class:`~hf_neuroformer.decoding.DecodingTarget`;
#: :data:`hf_neuroformer.metrics.decoding.DECODING_KINDS`).
KINDS = ("regression", "classification", "circular")

#: config keys :func:`~hf_neuroformer.finetuning.finetune`'s ``config_overrides`` may change: none of
#: them changes a backbone weight's shape
FINETUNE_CONFIG_KEYS = ("hidden_dropout", "attention_dropout", "decoding_pool", "decoding_head_hidden_size", "window_stride")

#: seeds torch.Generator.manual_seed takes, [low, high) (outside: "Overflow when unpacking long long")
SEED_RANGE = (-(2 ** 63), 2 ** 64)

# s: the longest simulation ``neuroformer simulate`` accepts (:data:`hf_neuroformer.simulation.MAX_CLI_DURATION`).
# The simulators step through time in Python (glm, hub-glm: 1-2 ms bins, about 1 s of wall time per 100 s
# simulated at 40 units) or brian2 (hub: 0.1 ms steps, about 0.5 s per simulated second at 300 units), and
# ``glm`` draws its random numbers for every bin up front (n_bins x n_units float64): an hour is already
# long for either; call the functions themselves for more.
MAX_CLI_DURATION = 3600.0

#: The largest seed :func:`hf_neuroformer.simulation.simulate_hub_network` takes (``brian2.seed``: numpy's
#: legacy generator).
MAX_BRIAN2_SEED = 2**32 - 1

#: The largest training seed (``TrainingConfig.seed``, ``neuroformer train --seed``, ``ablate --seed(s)``):
#: Accelerate's ``set_seed`` seeds numpy's legacy generator, which takes ``[0, 2**32 - 1]`` (a larger
#: seed failed with numpy's bare "Seed must be between 0 and 2**32 - 1" once the recording was read).
MAX_TRAINING_SEED = 2**32 - 1

#: The defaults of :class:`hf_neuroformer.simulation.HubNetworkParams` ``n_hubs`` and ``targets_per_hub``, here
#: so that ``neuroformer simulate`` checks its hub layout before the simulators (and the package) are imported.
DEFAULT_N_HUBS = 3
DEFAULT_TARGETS_PER_HUB = 30


def check_hub_layout(n_units: int, n_hubs: int, targets_per_hub: int) -> None:
    """The hub layout of :class:`hf_neuroformer.simulation.HubNetworkParams`: ``0 <= n_hubs < n_units``,
    ``targets_per_hub >= 1`` and every hub's block of targets among the non-hub units
    (``n_hubs * targets_per_hub <= n_units - n_hubs``). Integers, checked by the caller.

    Raises:
        ValueError: naming ``n_hubs`` or ``targets_per_hub``, the values, and what would fit (the
        default named when it is the value refused).
    """
    if not 0 <= n_hubs < n_units:
        # with the default hubs (--hubs not given), the message blamed a flag the user never gave
        raise ValueError(f"n_hubs: expected 0 <= n_hubs < n_units={n_units}, got {n_hubs}"
                         + (f" (default {DEFAULT_N_HUBS}): fewer hubs or more units" if n_hubs == DEFAULT_N_HUBS
                            else ""))
    if targets_per_hub < 1:  # the block-size hint below ("a smaller targets_per_hub") misled here
        raise ValueError(f"targets_per_hub: expected at least 1 target per hub, got {targets_per_hub}")
    if n_hubs * targets_per_hub > n_units - n_hubs:
        fits = (n_units - n_hubs) // n_hubs if n_hubs else None
        raise ValueError(
            f"targets_per_hub: expected 1 <= targets_per_hub and n_hubs * targets_per_hub <= the "
            f"{n_units - n_hubs} non-hub units, got {targets_per_hub} x {n_hubs} hubs"
            + (f" (default {DEFAULT_TARGETS_PER_HUB})" if targets_per_hub == DEFAULT_TARGETS_PER_HUB else "")
            + (f"; at most {fits} with {n_units} units and {n_hubs} hubs: a smaller targets_per_hub, "
               f"fewer hubs or more units" if fits else
               # no block of even 1 target fits: only fewer hubs (each needs a target) or more units help
               f"; not even 1 target per hub fits with {n_units} units and {n_hubs} hubs: fewer hubs "
               f"(at most {n_units // 2}) or more units" if fits == 0 else "")
        )


def config_settings(pairs) -> Dict[str, object]:
    """``(key, value)`` pairs (e.g. from ``--set`` of :func:`hf_neuroformer.cli.config_setting`) as a dict, in order.

    Raises:
        ValueError: a key given twice (names it and both values).
    """
    settings: Dict[str, object] = {}
    for k, v in pairs:
        if k in settings:
            raise ValueError(f"{k} given twice ({settings[k]!r} and {v!r})")
        settings[k] = v
    return settings


def override_keys(overrides) -> Dict[str, object]:
    """``overrides`` (fine-tuning's ``config_overrides``; None: none) as a dict after checking its
    type and keys (not the values, which :meth:`NeuroformerConfig._check` checks).

    Raises:
        ValueError: ``config_overrides: ...``: not a mapping, or a key outside :data:`FINETUNE_CONFIG_KEYS`
            (naming the allowed key a misspelt one resembles, by :func:`difflib.get_close_matches`).
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"config_overrides: expected a mapping {{key: value}} with keys among "
                         f"{list(FINETUNE_CONFIG_KEYS)}, got {type(overrides).__name__} {overrides!r}")
    bad = sorted(map(str, set(overrides) - set(FINETUNE_CONFIG_KEYS)))
    if bad:
        # a misspelt key ('hidden_dropot') read as a config field finetune refuses to change: name the key it resembles
        close = [f"{k!r} for {m[0]!r}" for k in bad
                 for m in [difflib.get_close_matches(k, FINETUNE_CONFIG_KEYS, n=1, cutoff=0.8)] if m]
        raise ValueError(f"config_overrides: {bad} cannot be changed at fine-tuning (the backbone's weights would not "
                         f"load, or it is set by finetune itself); allowed keys: {list(FINETUNE_CONFIG_KEYS)}"
                         + (f" (misspelt? {', '.join(close)})" if close else ""))
    return dict(overrides)


def as_dataclass(cls, value, field_name: str = "params"):
    """``value`` as an instance of the dataclass ``cls``, for an argument that takes its fields as
    one object: ``None`` gives ``cls()`` (the defaults), an instance of ``cls`` is returned as is
    (not copied, not validated), and a mapping of ``cls``'s fields (e.g. ``dataclasses.asdict`` of
    one, or the fields read from JSON) is built into one by keyword.

    Args:
        cls: a dataclass type (e.g. :class:`hf_neuroformer.stimuli.GratingParams`).
        value: ``None``, an instance of ``cls``, or a mapping ``{field name: value}``.
        field_name: the argument's name, which every error message starts with.

    Returns:
        An instance of ``cls``; the caller checks its values (e.g. its ``validate`` method).

    Raises:
        TypeError: ``value`` is neither ``None``, a ``cls`` nor a mapping (the message names
            ``field_name``, ``cls`` and the type given); ``cls`` is not a dataclass type.
        ValueError: a key of the mapping is not one of ``cls``'s fields (each such key named,
            with the field it resembles by :func:`difflib.get_close_matches`, and the fields
            listed), or a field without a default is missing (named).
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"cls: expected a dataclass type, got {cls!r}")
    if isinstance(value, cls):
        return value
    if value is None:
        value = {}
    elif not isinstance(value, Mapping):
        raise TypeError(f"{field_name}: expected a {cls.__name__} (or a dict of its fields, or "
                        f"None), got {type(value).__name__}")
    own = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in own]
    unknown = [k for k in value if k not in names]
    if unknown:
        hints = [(k, close[0]) for k in unknown
                 for close in [difflib.get_close_matches(str(k), names, n=1)] if close]
        if len(unknown) == 1:
            what = f"is not a {cls.__name__} field"
            hint = f" (did you mean {hints[0][1]!r}?)" if hints else ""
        else:
            what = f"are not {cls.__name__} fields"
            hint = (" (did you mean " + ", ".join(f"{m!r} for {k!r}" for k, m in hints) + "?)"
                    if hints else "")
        raise ValueError(f"{field_name}: {unknown} {what}{hint}; expected keys among {names}")
    missing = [f.name for f in own if f.name not in value
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{field_name}: {cls.__name__} {'field' if len(missing) == 1 else 'fields'} "
                         f"{missing} missing (it has no default); expected keys among {names}")
    return cls(**value)


def is_whole_number(value) -> bool:
    """An ``int`` or numpy integer, not a bool (``True`` is no count) and not a float: the test for
    counts passed to functions (batch sizes, step counts, window counts); config fields, which may
    come from YAML as ``64.0``, go through :func:`~hf_neuroformer.configuration_neuroformer.checked_int` instead."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real_number(value) -> bool:
    """A real number (Python or numpy, int or float, NaN and inf included), not a bool (``True``
    would read as 1) and not text: the one test for numbers passed to functions and read back from
    JSON. Finiteness and ranges are left to the caller, which names the argument."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_finite_number(value) -> bool:
    """:func:`is_real_number` and finite as a float (not NaN, not +-inf, not an integer past float
    range such as ``10**400``, which ``math.isfinite`` fails on with ``OverflowError``)."""
    if not is_real_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


#: float types narrower than float64, as numpy and torch name them (``str(value.dtype)``, ``torch.`` dropped)
NARROW_FLOAT_TYPES = ("float32", "float16", "bfloat16")


def narrow_float_seconds_message(name: str, value) -> str | None:
    """The refusal of a length in seconds (a window, a dt bin width) given as a numpy or torch float
    narrower than float64 (float32, float16, bfloat16; scalars and 0-d arrays or tensors), naming
    ``name``; None for anything else (Python floats and ints, float64 numpy scalars, which the caller
    may convert with ``float()``, and non-numbers, left to the caller's own check).

    Widened to float64 such a length keeps the narrow type's rounding: ``np.float32(0.05)`` is
    0.05000000074505806 s, so a window ``[s, s + W)`` reached past the next window's start and a spike
    on that start was counted in both windows (``window_spike_counts`` gave [3 2] for [2 2]). The
    same rule as the refusal of float32 spike times by :class:`~hf_neuroformer.recording.SpikeRecording`
    (:func:`hf_neuroformer.binning.narrow_float_times_message`). Standard library only: the dtype is
    read by its name.

    Returns:
        ``"<name>: expected a Python float or float64 length (s), got float32 np.float32(0.05), which is
        0.05000000074505806 s as float64 ...; give a Python float or float64 ..."``, or None.
    """
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return None
    kind = str(dtype).removeprefix("torch.")
    if kind not in NARROW_FLOAT_TYPES:
        return None
    try:
        wide = f", which is {float(value)!r} s as float64"
    except (TypeError, ValueError, RuntimeError):  # an array or tensor of several values: the caller's shape check
        wide = ""
    return (f"{name}: expected a Python float or float64 length (s), got {kind} {value!r}{wide} (widened, it keeps "
            f"the {kind} rounding, so a spike on a window or bin edge is counted on the other side, or in two "
            f"windows); give a Python float or float64 (the value as written, or computed in float64; float(x) "
            f"keeps the rounding)")


def check_sampling_ranges(temperature, top_k, top_p, dt_temperature=None, dt_top_k=None, dt_top_p=None) -> None:
    """The ranges of :class:`~hf_neuroformer.generation.SamplingSettings`' values, real numbers
    (Python or numpy; the caller checks the type), ``dt_*`` None for "as the unit-id head's".

    Raises:
        ValueError: ``<name>: expected ...``: a temperature not finite and > 0, a top-p outside
            (0, 1], a top-k that is not a whole number >= 0 (the temperatures first, then top-p,
            then top-k).
    """
    values = {"temperature": temperature, "dt_temperature": dt_temperature, "top_p": top_p, "dt_top_p": dt_top_p,
              "top_k": top_k, "dt_top_k": dt_top_k}
    for name in ("temperature", "dt_temperature"):
        v = values[name]
        if v is not None and not (is_finite_number(v) and v > 0):
            # '> 0, got inf' read as no error; 0, greedy decoding in other samplers, is told where greedy is
            raise ValueError(f"{name}: expected a temperature > 0 and finite, got {v}" + (
                "; for the most likely unit and dt at every step (greedy decoding, what a temperature of 0 means in "
                "other samplers) pass --greedy (greedy=True)" if is_finite_number(v) and v == 0 else ""))
    for name in ("top_p", "dt_top_p"):
        v = values[name]
        if v is not None and not (0 < v <= 1):
            raise ValueError(f"{name}: expected a value in (0, 1], got {v}")
    for name in ("top_k", "dt_top_k"):
        v = values[name]
        # finite first: int() of inf or NaN raises; an int past float range is finite (top_k=10**20, "keep all")
        if v is not None and (not -math.inf < v < math.inf or int(v) != v or v < 0):
            raise ValueError(f"{name}: expected an integer >= 0 (0 = off), got {v}")


def check_finetune_settings(*, max_steps, batch_size, gradient_accumulation_steps, eval_steps=None, warmup_steps=0,
                            learning_rate, weight_decay=0.0, generative_loss_weight=0.0, fraction=1.0,
                            freeze_backbone_steps=0, label: Callable[[str], str] = lambda name: name) -> None:
    """The numeric settings of :func:`~hf_neuroformer.finetuning.finetune`, checked before anything
    is read or written (``neuroformer finetune`` calls it with ``label`` turning ``max_steps`` into
    ``--max-steps``, before torch is imported).

    Raises:
        ValueError: naming the setting (``label(name)``) and what it expects: whole numbers >= 1
            for ``max_steps``, ``batch_size``, ``gradient_accumulation_steps``, ``eval_steps`` (or
            None); ``warmup_steps`` >= 0 and below ``max_steps``; ``freeze_backbone_steps`` a whole number in
            ``[0, max_steps]``; finite ``learning_rate`` > 0, ``weight_decay`` >= 0,
            ``generative_loss_weight`` >= 0; ``fraction`` in (0, 1]; ``batch_size`` a multiple of
            ``gradient_accumulation_steps``.
    """
    for name, value in (("max_steps", max_steps), ("batch_size", batch_size),
                        ("gradient_accumulation_steps", gradient_accumulation_steps)):
        if not is_whole_number(value) or value < 1:
            raise ValueError(f"{label(name)}: expected a whole number >= 1, got {value!r}")
    if eval_steps is not None and (not is_whole_number(eval_steps) or eval_steps < 1):
        raise ValueError(f"{label('eval_steps')}: expected a whole number >= 1 (or None: max_steps // 10), got {eval_steps!r}")
    if not is_whole_number(warmup_steps) or warmup_steps < 0:
        raise ValueError(f"{label('warmup_steps')}: expected a whole number >= 0, got {warmup_steps!r}")
    if warmup_steps >= max_steps:
        # the linear warm-up never ended: every step ran below learning_rate (at most max_steps / warmup_steps
        # of it) and the decay never began, without a word
        raise ValueError(f"{label('warmup_steps')}: expected fewer than {label('max_steps')}={max_steps} (the learning "
                         f"rate rises to learning_rate over the warm-up, then decays), got {warmup_steps!r}: the run "
                         f"would end before reaching learning_rate")
    if not is_whole_number(freeze_backbone_steps) or not 0 <= freeze_backbone_steps <= max_steps:
        raise ValueError(f"{label('freeze_backbone_steps')}: expected a whole number from 0 (off) to "
                         f"{label('max_steps')}={max_steps} (the backbone never trains), got {freeze_backbone_steps!r}")
    for name, value, ok, expect in (
        ("learning_rate", learning_rate, lambda v: v > 0, "a finite number > 0"),
        ("weight_decay", weight_decay, lambda v: v >= 0, "a finite number >= 0"),
        ("generative_loss_weight", generative_loss_weight, lambda v: v >= 0, "a finite number >= 0 (0 = off)"),
        ("fraction", fraction, lambda v: 0 < v <= 1, "a number in (0, 1]"),
    ):
        if not (is_finite_number(value) and ok(value)):
            raise ValueError(f"{label(name)}: expected {expect}, got {value!r}")
    if batch_size % gradient_accumulation_steps:
        raise ValueError(f"{label('batch_size')}: expected a multiple of {label('gradient_accumulation_steps')}="
                         f"{gradient_accumulation_steps}, got {batch_size}")


def check_ema_decay(decay, name: str = "ema_decay") -> None:
    """``decay`` of :class:`~hf_neuroformer.finetuning.WeightAverage`: None (off) or a number in (0, 1).

    Raises:
        ValueError: naming ``name`` and the expectation."""
    if decay is not None and not (is_finite_number(decay) and 0 < decay < 1):
        raise ValueError(f"{name}: expected None (off) or a number in (0, 1), e.g. 0.99 (an average over about "
                         f"1 / (1 - decay) = 100 steps), got {decay!r}")


def check_anchor_decay(decay, name: str = "anchor_decay", learning_rate=None) -> None:
    """``decay`` of :class:`~hf_neuroformer.finetuning.PretrainedAnchor`: None (off) or a finite number
    > 0, the decay towards the pretrained weights per unit of learning rate. With ``learning_rate``
    (the peak rate of the run) also ``learning_rate * decay < 1``: a step's pull
    ``lr * decay * (w - w0)`` would otherwise carry a weight to, or past, its pretrained value.

    Raises:
        ValueError: naming ``name``, the value and the expectation (a bool, NaN or a string is
            refused too)."""
    if decay is None:
        return
    if isinstance(decay, bool) or not (is_finite_number(decay) and decay > 0):
        raise ValueError(f"{name}: expected None (off) or a number > 0 (the pull towards the pretrained weights per "
                         f"unit of learning rate, e.g. 4.0), got {decay!r}")
    if learning_rate is not None and is_finite_number(learning_rate) and learning_rate * decay >= 1:
        raise ValueError(f"{name}: expected learning_rate * {name} < 1 (each step moves a weight by that share of its "
                         f"distance to the pretrained value), got {decay!r} with learning_rate {learning_rate!r}")


#: Losses of a regression decoding target (``decoding_targets[i]["loss"]``; absent = ``"mse"``).
REGRESSION_LOSSES = ("mse", "hl_gauss")
#: HL-Gauss: each outer bin edge lies this many Gaussian sigmas beyond the training extreme
#: (:func:`hl_gauss_bin_range`), so a training target's Gaussian loses at most 0.13 % of its mass
#: outside the bins.
HL_GAUSS_MARGIN_SIGMAS = 3.0


def check_hl_gauss_settings(num_bins, sigma_ratio, where: str = "{}", error: type = ValueError) -> int:
    """``num_bins`` and ``hl_gauss_sigma_ratio`` of an HL-Gauss regression head (the histogram
    loss, Imani & White ICML 2018; Farebrother et al. ICML 2024, arXiv 2403.03950, recommend a
    sigma of 0.75 bin widths): ``num_bins`` an integer >= 2 (3.0 from YAML is taken), the ratio
    (Gaussian sigma / bin width) a finite number > 0, and ``num_bins > 2 * HL_GAUSS_MARGIN_SIGMAS
    * ratio`` (the margins of :func:`hl_gauss_bin_range` must leave the training range a positive
    width). ``where`` formats a field name (``"decoding_targets[0].{} ('x')"``).

    Returns: ``num_bins`` as an ``int``.

    Raises:
        error (a ValueError subclass): naming the field, the value and the expectation."""
    if isinstance(num_bins, bool) or not is_whole_number(num_bins) or num_bins < 2:
        raise error(f"{where.format('num_bins')}: expected an integer >= 2 (the HL-Gauss head's value bins), "
                    f"got {num_bins!r}")
    if isinstance(sigma_ratio, bool) or not (is_finite_number(sigma_ratio) and sigma_ratio > 0):
        raise error(f"{where.format('hl_gauss_sigma_ratio')}: expected a finite number > 0 (the Gaussian's sigma "
                    f"in bin widths, e.g. 0.75), got {sigma_ratio!r}")
    if num_bins <= 2 * HL_GAUSS_MARGIN_SIGMAS * sigma_ratio:
        raise error(f"{where.format('num_bins')}: expected more than 2 * {HL_GAUSS_MARGIN_SIGMAS:g} * "
                    f"hl_gauss_sigma_ratio = {2 * HL_GAUSS_MARGIN_SIGMAS * sigma_ratio:g} bins (the margins of "
                    f"{HL_GAUSS_MARGIN_SIGMAS:g} sigma on each side take that many), got {num_bins!r}")
    return int(num_bins)


def hl_gauss_bin_range(lo: float, hi: float, num_bins: int, sigma_ratio: float) -> tuple:
    """``(low, high)`` outer edges of ``num_bins`` equal bins that hold ``[lo, hi]`` (the standardised
    training targets' min and max) with a margin of ``HL_GAUSS_MARGIN_SIGMAS`` sigmas on each side,
    sigma = ``sigma_ratio`` x the bin width: the width is ``(hi - lo) / (num_bins - 2 * 3 *
    sigma_ratio)`` (with K = 64, ratio 0.75: the span / 59.5, each margin 2.25 bin widths). A zero
    span (``hi == lo``) is taken as 1 (one standard deviation). Settings checked by
    :func:`check_hl_gauss_settings` first."""
    span = (hi - lo) if hi > lo else 1.0
    width = span / (num_bins - 2 * HL_GAUSS_MARGIN_SIGMAS * sigma_ratio)
    margin = HL_GAUSS_MARGIN_SIGMAS * sigma_ratio * width
    mid = (hi + lo) / 2 if hi > lo else lo
    half = span / 2 + margin
    return (float(mid - half), float(mid + half))


def check_spike_dropout(p, name: str = "spike_dropout") -> None:
    """``p`` of :class:`~hf_neuroformer.finetuning.SpikeDropout`: a probability in [0, 1) (0: off).

    Raises:
        ValueError: naming ``name`` and the expectation (1 would drop every spike; a bool, None,
            NaN or a string is refused too)."""
    if not (is_finite_number(p) and 0 <= p < 1):
        raise ValueError(f"{name}: expected the probability that each spike token of a training window is dropped, "
                         f"a number in [0, 1) (0: off), got {p!r}")


def check_training_seed(seed, name: str = "seed") -> None:
    """A seed that Accelerate's / transformers' ``set_seed`` takes: a whole number in
    ``[0,`` :data:`MAX_TRAINING_SEED` ``]`` (both seed numpy's legacy generator).

    Raises:
        ValueError: naming ``name``, the range and the value (a bool, float or string is refused
            too); numpy's own "Seed must be between 0 and 2**32 - 1" named no argument."""
    if not is_whole_number(seed) or not 0 <= seed <= MAX_TRAINING_SEED:
        raise ValueError(f"{name}: expected an integer in [0, {MAX_TRAINING_SEED}] (set_seed seeds numpy's legacy "
                         f"generator), got {seed!r}")


def check_block_s(block_s, name: str = "ci_block_s", error: type = ValueError) -> float:
    """``block_s`` as a float after checking it is a finite number of seconds > 0 (the rule of
    :func:`hf_neuroformer.metrics.bootstrap.check_block_s`, which raises its
    ``BootstrapInputError``).

    Args:
        block_s: the bootstrap block length, s.
        name: how the error names the argument (``"ci_block_s"``, or a CLI flag ``"--ci-block-s"``).
        error: the ValueError subclass raised.

    Raises:
        ValueError (``error``): not a number (a bool is refused too), NaN, infinite, 0 or negative;
            the message names ``name`` and the value.
    """
    if not (is_finite_number(block_s) and block_s > 0):
        raise error(f"{name}: expected a finite number of seconds > 0 (the length of a bootstrap "
                    f"block of a time split's test windows), got {block_s!r}")
    return float(block_s)


def check_pass_counts(*, batch_size=None, max_windows=None, label: Callable[[str], str] = lambda name: name) -> None:
    """The counts of a pass of a trained model over windows (``batch_size``, ``max_windows``; None
    skips one): the part of :func:`hf_neuroformer.analysis._batches.check_pass_settings` that needs
    no library.

    Raises:
        ValueError: ``label(name): expected an integer >= 1`` (a negative ``max_windows`` was used as
            a slice and dropped the last windows, 0 left none, 2.5 failed inside numpy).
    """
    for name, value in (("batch_size", batch_size), ("max_windows", max_windows)):
        if value is not None and (not is_whole_number(value) or value < 1):
            raise ValueError(f"{label(name)}: expected an integer >= 1, got {value!r}")


def check_bin_size(bin_size, field: str = "bin_size", error: type = ValueError) -> float:
    """``bin_size`` as a float after checking it is a finite number of seconds > 0 (the fidelity
    metrics' bin sizes, :mod:`hf_neuroformer.metrics.fidelity`).

    Raises:
        ValueError (``error``): ``<field>: expected a positive finite number of seconds, got ...``;
            ``<field>: expected a Python float or float64 length (s), got float32 ...`` for a numpy /
            torch float32, float16 or bfloat16 (:func:`narrow_float_seconds_message`).
    """
    # np.float32(0.1) was taken as 0.10000000149011612 s: bins a hair wider than asked, the rounding kept
    narrow = narrow_float_seconds_message(field, bin_size)
    if narrow is not None:
        raise error(narrow)
    if not is_real_number(bin_size):
        # the text '0.1' or None failed inside np.isfinite (TypeError naming no argument), an array with
        # 'truth value ... ambiguous', and True was taken as a 1-s bin
        raise error(f"{field}: expected a positive finite number of seconds, got {bin_size!r}")
    if not (is_finite_number(bin_size) and bin_size > 0):  # np.isfinite(10**400) raised TypeError
        raise error(f"{field}: expected a positive finite number of seconds, got {bin_size}")
    return float(bin_size)


def check_min_coverage(min_coverage, field: str = "min_coverage", error: type = ValueError) -> float:
    """``min_coverage`` (the least share of a trial the generated support must cover,
    :func:`hf_neuroformer.metrics.fidelity.check_min_coverage`) as a float.

    Raises:
        ValueError (``error``): naming ``field``, unless it is a fraction in ``(0, 1]``.
    """
    # the text '0.9' or None failed in the comparison ('<' not supported), naming no argument; True read as 1
    if not is_real_number(min_coverage) or not (0 < min_coverage <= 1):
        raise error(f"{field}: expected a fraction in (0, 1], got {min_coverage!r}")
    return float(min_coverage)


#: s: a spike-timing tolerance (:func:`check_spike_tolerances`) this wide or wider is refused. Coincidence
#: windows of spike timing are milliseconds wide (5-25 ms by default); one of a second or more matches
#: any spike of the unit in the window, a count rather than a timing, and is what milliseconds read as
#: seconds give (``--timing-tolerances 5,10,25`` scored at 5, 10 and 25 s, an F1 near 1 on random spikes).
MAX_SPIKE_TOLERANCE = 1.0

#: s: a spike-timing tolerance (:func:`check_spike_tolerances`) below this (0.1 ms) is refused. Spike
#: times are sampled at tens of kHz (33 us at 30 kHz) and generated ones sit at the centres of
#: millisecond dt bins, so a narrower window measures nothing more; and a key names its tolerance in
#: ms rounded to the nanosecond (:func:`tolerance_label`): 0.0000000004 s was scored as ``timing_f1_0ms``.
MIN_SPIKE_TOLERANCE = 1e-4


def tolerance_label(tolerance: float) -> str:
    """Key suffix of a spike-timing tolerance (s): ``0.005`` -> ``"5ms"``, ``0.0025`` -> ``"2.5ms"``."""
    return f"{round(tolerance * 1e3, 6):g}ms"


def check_spike_tolerances(tolerances, field: str = "tolerances", error: type = ValueError) -> tuple:
    """``tolerances`` (s) as a tuple of floats, or an ``error`` naming ``field`` unless it is a
    non-empty sequence of distinct positive finite numbers of seconds from
    :data:`MIN_SPIKE_TOLERANCE` (0.1 ms) up to, not including, :data:`MAX_SPIKE_TOLERANCE` (1 s):
    two that give the same key, e.g. 0.005 and 0.0050000001, are refused rather than one
    overwriting the other; 1 s or more is milliseconds read as seconds. A single number is taken as
    a sequence of one."""
    if is_real_number(tolerances):
        tolerances = (tolerances,)
    try:
        values = list(tolerances)
    except TypeError:
        raise error(f"{field}: expected a sequence of positive numbers of seconds, got {tolerances!r}") from None
    if not values:
        raise error(f"{field}: expected at least one tolerance (s), got none")
    for k, v in enumerate(values):
        if not (is_finite_number(v) and v > 0):
            raise error(f"{field}[{k}]: expected a positive finite number of seconds, got {v!r}")
    wide = [k for k, v in enumerate(values) if v >= MAX_SPIKE_TOLERANCE]
    if wide:
        k = wide[0]
        raise error(f"{field}[{k}]: expected a coincidence window below {MAX_SPIKE_TOLERANCE:g} s, got {values[k]!r} s "
                    f"({len(wide)} of {len(values)} tolerances are {MAX_SPIKE_TOLERANCE:g} s or more); tolerances are "
                    "seconds, not milliseconds: 0.005,0.01,0.025 for 5, 10 and 25 ms")
    narrow = [k for k, v in enumerate(values) if v < MIN_SPIKE_TOLERANCE]
    if narrow:
        k = narrow[0]
        raise error(f"{field}[{k}]: expected a coincidence window of at least {MIN_SPIKE_TOLERANCE:g} s (0.1 ms), got "
                    f"{values[k]!r} s ({len(narrow)} of {len(values)} tolerances are below it); tolerances are "
                    "seconds: 0.005 for 5 ms")
    labels = [tolerance_label(float(v)) for v in values]
    if len(set(labels)) < len(labels):
        dup = next(lab for lab in labels if labels.count(lab) > 1)
        raise error(f"{field}: expected distinct tolerances, got {values!r} (two are {dup})")
    return tuple(float(v) for v in values)


def check_whole(value, field: str, minimum: int, error: type = ValueError) -> int:
    """``value`` as an int after checking it is a whole number >= ``minimum`` (a whole float such as
    ``20.0`` too; 2.5, None, NaN, inf, True and the text ``'3'`` are refused).

    Raises:
        ValueError (``error``): ``<field>: expected an integer >= <minimum>, got ...``.
    """
    if not (is_finite_number(value) and int(value) == value and value >= minimum):
        raise error(f"{field}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_min_isis(min_isis, error: type = ValueError) -> int:
    """``min_isis`` (the fewest interspike intervals a unit needs, in each recording, for its ISI
    test) as an int after checking it is an integer >= 1 (:func:`check_whole`; None, NaN and inf
    failed inside ``int()`` naming no argument, and the text ``'20'`` read as ``got 20``).

    Raises:
        ValueError (``error``): ``min_isis: expected an integer >= 1, got ...``.
    """
    return check_whole(min_isis, "min_isis", 1, error)


def target_label_form(text: str, error: type = ValueError):
    """``(name, column)`` of a decoding target label by its form alone: ``"x"`` -> ``("x", None)``,
    ``"position[1]"`` -> ``("position", 1)`` (spaces inside the brackets allowed). The form check of
    :func:`hf_neuroformer.decoding.parse_target_label`, which also takes a variable whose own name has
    brackets; here so that ``neuroformer finetune --target`` refuses a malformed item before torch is
    imported.

    Raises:
        ValueError (``error``): ``text`` has a bracket but is not ``NAME[k]`` with ``k`` an integer
            >= 0 (``position[``, ``position[a]``, ``position[-1]``).
    """
    if "[" not in text and "]" not in text:
        return text, None
    m = re.fullmatch(r"([^\[\]]+)\[\s*(\d+)\s*\]", text)
    if m is None:
        raise error(f"{text!r} is not NAME or NAME[k]; expected a variable name, or a column of a 2-D "
                    "series as NAME[k] with k an integer >= 0, such as position[1]")
    return m.group(1).strip(), int(m.group(2))


#: The package's model kinds, by class name, for the messages of :func:`check_model_kind`: ``"is"``, what a
#: model of the kind is (said when another kind was wanted); for a kind a check may want (the first of its
#: ``accepted`` names), what to do instead: ``"load"`` after any other object, ``"path"`` for a path
#: (``{path}`` stands for it, quoted) and ``"other"`` after another kind of the package's models.
_MODEL_KINDS = {
    "NeuroformerModel": {"is": "the backbone alone, as AutoModel.from_pretrained loads it"},
    "NeuroformerForPreTraining": {
        "is": "a pretrained model",
        "load": "load one with AutoModelForPreTraining.from_pretrained(<model dir>)",
        "path": ("load the model it names with AutoModelForPreTraining.from_pretrained({path}), its tokenizer "
                 "with AutoTokenizer.from_pretrained"),
        "other": "load the pretrained model with AutoModelForPreTraining.from_pretrained(<model dir>)",
    },
    "NeuroformerForBehaviorDecoding": {
        "is": "a behaviour decoder",
        "load": "load one with load_decoder(<decoder dir>)",
        "path": "load the decoder it names with load_decoder({path})",
        "other": "fine-tune one with finetune, load it with load_decoder(<decoder dir>)",
    },
}


def check_model_kind(model, accepted, flag: str = "model", *, expected: str,
                     hints: Mapping[str, str] | None = None) -> None:
    """Refuse, before any work, a model of a kind the caller cannot use, naming ``flag``, the type given and
    how to get the kind wanted: the one check behind
    :func:`~hf_neuroformer.generation.check_next_spike_model`,
    :func:`~hf_neuroformer.finetuning.check_decoder_model` and
    :func:`~hf_neuroformer.analysis._batches.check_attention_model`, which each restated it.

    Classes are compared by name along ``type(model).__mro__``, not by identity: a model loaded as Hub
    remote code (``trust_remote_code=True``) is another class object of the same name, and this module
    imports no torch (see the module docstring).

    Args:
        model: the object passed as the model.
        accepted: the class names that pass (a name or a sequence of names); the first is the kind the
            message says how to get: ``"NeuroformerForPreTraining"`` or ``"NeuroformerForBehaviorDecoding"``.
        flag: the argument named at the start of the message.
        expected: what the message says was expected, e.g. ``"a NeuroformerForBehaviorDecoding (a
            fine-tuned behaviour decoder)"``.
        hints: another of the package's model kinds (``"NeuroformerModel"``,
            ``"NeuroformerForPreTraining"`` or ``"NeuroformerForBehaviorDecoding"``) -> why a model of it
            will not do; the message says what the model is and why, in parentheses after its type, then
            how to get the kind wanted. The first kind, in the table's order, along the model's MRO is
            used.

    Raises:
        TypeError: ``model`` is of none of the ``accepted`` classes: ``"{flag}: expected {expected}, got
            {type}"`` and then, for a ``str`` or ``os.PathLike`` (a model directory's path), the call
            that loads what it names with the path; for a kind in ``hints``, what it is, its hint and
            how to get the kind wanted; for anything else (``None`` included), the call that loads one.
        ValueError: ``accepted`` is empty or starts with a kind this check cannot say how to get, or a
            name in ``hints`` is none of the package's model kinds.
    """
    names = (accepted,) if isinstance(accepted, str) else tuple(accepted)
    wanted = _MODEL_KINDS.get(names[0], {}) if names else {}
    if "load" not in wanted:
        loadable = sorted(name for name, kind in _MODEL_KINDS.items() if "load" in kind)
        raise ValueError(f"accepted: expected class names starting with one of {loadable}, got {names!r}")
    hints = dict(hints or {})
    unknown = [name for name in hints if name not in _MODEL_KINDS]
    if unknown:
        raise ValueError(f"hints: expected keys among {sorted(_MODEL_KINDS)}, got {unknown!r}")
    classes = {c.__name__ for c in type(model).__mro__}
    if classes.intersection(names):
        return
    if isinstance(model, (str, os.PathLike)):
        what = f" (a path: {wanted['path'].format(path=repr(os.fspath(model)))})"
    else:
        kind = next((name for name in hints if name in classes), None)
        what = (f"; {wanted['load']}" if kind is None
                else f" ({_MODEL_KINDS[kind]['is']}: {hints[kind]}); {wanted['other']}")
    raise TypeError(f"{flag}: expected {expected}, got {type(model).__name__}{what}")


def is_main_rank() -> bool:
    """Whether this is a launch's main process: ``RANK`` 0 in the environment torchrun /
    ``accelerate launch`` set, or no launcher. Read from the environment (no torch), so that the
    command answers before torch is imported and :func:`~hf_neuroformer.training.train` before
    Accelerate starts as after; a message every rank reaches alike is given by this rank alone."""
    return os.environ.get("RANK", "0") == "0"


__all__ = ["FINETUNE_CONFIG_KEYS", "KINDS", "MAX_BRIAN2_SEED", "MAX_CLI_DURATION", "MAX_TRAINING_SEED", "MAX_SPIKE_TOLERANCE", "MIN_SPIKE_TOLERANCE",
           "HL_GAUSS_MARGIN_SIGMAS", "REGRESSION_LOSSES", "SEED_RANGE", "check_bin_size", "check_hl_gauss_settings", "hl_gauss_bin_range", "check_block_s", "check_ema_decay", "check_spike_dropout", "check_finetune_settings", "check_training_seed", "check_min_coverage",
           "check_min_isis", "check_pass_counts", "check_sampling_ranges", "check_spike_tolerances", "check_whole", "config_settings",
           "is_finite_number", "is_main_rank", "is_real_number", "is_whole_number", "override_keys", "target_label_form",
           "tolerance_label",
           "narrow_float_seconds_message", "check_anchor_decay", "check_model_kind",
           "as_dataclass"]
