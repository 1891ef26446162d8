"""Allowed values, and the checks of them, that the ``neuroformer`` command applies before torch is imported.

The standard library only, on purpose: the console script (``hf_neuroformer_entry``) loads this
module and ``cli.py`` without importing the package, whose ``__init__`` imports torch and
transformers (5-10 s of CPU), so that a refused ``--kind``, ``--set`` key or sampling value is
answered at once. The library modules that use these values import them from here (one
definition): :mod:`~hf_neuroformer.decoding` (:data:`KINDS`), :mod:`~hf_neuroformer.finetuning`
(:data:`FINETUNE_CONFIG_KEYS`, :func:`config_settings`, :func:`override_keys`) and
:mod:`~hf_neuroformer.generation` (:data:`SEED_RANGE`, :func:`check_sampling_ranges`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Dict

#: Kinds of a decoding target (:class:`~hf_neuroformer.decoding.DecodingTarget`).
KINDS = ("regression", "classification", "circular")

#: config keys :func:`~hf_neuroformer.finetuning.finetune`'s ``config_overrides`` may change: none of
#: them changes a backbone weight's shape
FINETUNE_CONFIG_KEYS = ("hidden_dropout", "attention_dropout", "decoding_pool", "decoding_head_hidden_size", "window_stride")

#: seeds torch.Generator.manual_seed takes, [low, high) (outside: "Overflow when unpacking long long")
SEED_RANGE = (-(2 ** 63), 2 ** 64)


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
        ValueError: ``config_overrides: ...``: not a mapping, or a key outside :data:`FINETUNE_CONFIG_KEYS`.
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"config_overrides: expected a mapping {{key: value}} with keys among "
                         f"{list(FINETUNE_CONFIG_KEYS)}, got {type(overrides).__name__} {overrides!r}")
    bad = sorted(map(str, set(overrides) - set(FINETUNE_CONFIG_KEYS)))
    if bad:
        raise ValueError(f"config_overrides: {bad} cannot be changed at fine-tuning (the backbone's weights would not "
                         f"load, or it is set by finetune itself); allowed keys: {list(FINETUNE_CONFIG_KEYS)}")
    return dict(overrides)


def _finite_as_float(v) -> bool:
    """Whether the real number ``v`` is finite as a float (an integer past float range such as
    ``10**400`` is not: ``math.isfinite`` fails on it with ``OverflowError``)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


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
        if v is not None and not (_finite_as_float(v) and v > 0):
            raise ValueError(f"{name}: expected a temperature > 0, got {v}")
    for name in ("top_p", "dt_top_p"):
        v = values[name]
        if v is not None and not (0 < v <= 1):
            raise ValueError(f"{name}: expected a value in (0, 1], got {v}")
    for name in ("top_k", "dt_top_k"):
        v = values[name]
        # finite first: int() of inf or NaN raises; an int past float range is finite (top_k=10**20, "keep all")
        if v is not None and (not -math.inf < v < math.inf or int(v) != v or v < 0):
            raise ValueError(f"{name}: expected an integer >= 0 (0 = off), got {v}")


__all__ = ["FINETUNE_CONFIG_KEYS", "KINDS", "SEED_RANGE", "check_sampling_ranges", "config_settings", "override_keys"]
