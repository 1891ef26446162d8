"""Generative pretraining with Accelerate: AdamW, warm-up + cosine schedule, gradient clipping,
validation-based checkpoint selection, test metrics written once at the end.

Trap list (GUIDE sec. 5) handled here: training windows are reshuffled every epoch (trap 8); the
checkpoint is chosen on the validation split and the test split is scored once, after training
(trap 7); splits are contiguous blocks with gaps (trap 6, see :mod:`hf_neuroformer.windows`);
truncated spikes are counted and reported (trap 10).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fnmatch
import itertools
import json
import math
import os
import pickle
import re
import shutil
import socket
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError

from .argument_checks import MAX_TRAINING_SEED, is_main_rank, tolerance_label
from .configuration_neuroformer import (NeuroformerConfig, checked_bool, checked_float, checked_int,
                                      saved_modalities_without_ignored_keys)
from .generation import (check_generation_batch_memory, generate_spikes, generation_windows,
                         longest_generation_past)
from .jsonio import json_safe
from .metrics import TokenBaselines, compare_recordings
from .metrics.fidelity import spike_timing_f1_keys
from .metrics.bootstrap import resolve_block_s
from .modeling_neuroformer import NeuroformerForPreTraining
from .recording import SpikeRecording, check_not_empty, count_noun, first_few
from .run_record import UNFINISHED_FINETUNE, UNFINISHED_RECORDS, UNFINISHED_TRAIN, write_unfinished_run
from .save_journal import SAVE_JOURNAL, STAGING_PREFIX, finish_interrupted_save, fsync_path, fsync_tree, replace_files
from .tokenization_neuroformer import NeuroformerTokenizer
from .modalities import events_in_no_window, fit_modalities, truncated_tokens_text, windows_without_values
from .windows import (SPLITS, TRAIN_SHARD_LAYOUT, NeuroformerCollator, _is_prepared_manifest, batch_to_device,
                      build_window_datasets, column_values, keeps_training_mode, load_prepared, plan_splits, spikes_outside_windows, split_spikes_digest,
                      verify_prepared, warn_splits_without_spikes)

#: Attention implementations ``TrainingConfig.attn_implementation`` accepts.
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
#: Sub-folder of the output directory holding the resumable checkpoints.
CHECKPOINT_DIR = "checkpoints"
#: What every resumable checkpoint holds: file name -> the names it may have (loop position; the
#: weights and optimizer state as Accelerate's ``save_state`` names them, ``model.safetensors`` and
#: ``optimizer.bin``, or sharded under FSDP; the RNG states of each process, ``random_states_<rank>.pkl``);
#: ``save_state`` adds the registered objects (the scheduler).
CHECKPOINT_FILES = {"trainer_state.json": ("trainer_state.json",),
                    "model.safetensors": ("model*.safetensors", "pytorch_model*"),
                    "optimizer.bin": ("optimizer*",),
                    "random_states_0.pkl": ("random_states_0.pkl",)}

MODEL_FILES = ("config.json", "model.safetensors", "metrics.json", "vocab.json", "tokenizer_config.json",
               "splits.json", "training_log.json", "training_config.json")
#: Figures a run writes beside its model: ``train``'s loss curves (the training loss alone when
#: there is no validation split) and recorded vs generated test spikes (when the test split was
#: generated), and
#: ``finetune``'s decoded vs recorded behaviour on the test split. A run removes the ones it does
#: not write, so none of another run stays beside a model.
RUN_FIGURES = ("training_curves.png", "test_generation.png", "test_decoding.png")
#: Tables a run writes beside its model: ``finetune``'s decoded and recorded behaviour per test
#: window (:func:`hf_neuroformer.decoding.prediction_table`). Removed, like the figures, by a run
#: that does not write them.
RUN_TABLES = ("test_predictions.csv",)
#: JSON records that one kind of run writes and the other does not: ``train``'s
#: ``training_config.json``, ``finetune``'s ``decoding_report.json``. A save that does not write one
#: removes it, so a decoder's report does not stay beside a model pretrained over it with
#: ``--overwrite`` (and get pushed with it), nor a pretraining's settings beside a decoder.
RUN_RECORDS = ("training_config.json", "decoding_report.json")
#: The way out that every resume refusal offers (the CLI flag and the Python argument).
START_AFRESH = "start afresh with --overwrite (overwrite=True) or another --output-dir"
#: Weight of each step's loss in the running training loss (``train_loss`` in ``training_log.json``,
#: the progress bar's ``loss``): an exponential moving average with decay ``1 - RUNNING_LOSS_WEIGHT``,
#: bias-corrected (see :func:`running_loss`).
RUNNING_LOSS_WEIGHT = 0.05


def running_loss(previous: float | None, loss: float, n: int, weight: float = RUNNING_LOSS_WEIGHT) -> float:
    """The running training loss after step ``n``: the bias-corrected exponential moving average of
    the step losses, ``m_n / (1 - (1 - weight)**n)`` with ``m_n = (1 - weight) m_(n-1) + weight l_n``
    and ``m_0 = 0``, as Adam corrects its moment estimates (Kingma & Ba 2015, section 3).

    Without the correction the average started at step 1's loss (0.9025 of the value after 3 steps
    was step 1's loss); corrected, step ``k``'s loss has the weight ``weight (1 - weight)**(n - k) /
    (1 - (1 - weight)**n)``, the weights sum to 1, and after one step the value is that step's loss.
    The update is written on the corrected value, so a resumed run (which restores it from its
    checkpoint) continues it exactly.

    Args:
        previous: the running loss after step ``n - 1`` (nats; ``None`` or ignored at ``n == 1``).
        loss: step ``n``'s training loss, nats (NaN or infinite is carried on: a diverged run).
        n: the step number, counted from 1 since the run began (resumed runs included).
        weight: the weight of a new step, in ``(0, 1]``.

    Returns:
        The running loss after step ``n``, nats (float).

    Raises:
        ValueError: ``n`` below 1, ``previous`` ``None`` after step 1, or ``weight`` outside ``(0, 1]``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a step number >= 1, got {n!r}")
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"weight: expected a value in (0, 1], got {weight!r}")
    if n == 1:
        return float(loss)
    if previous is None:
        raise ValueError(f"previous: the running loss after step {n - 1} is needed at step {n}, got None")
    decay = 1.0 - weight
    # m_(n-1) = previous * (1 - decay**(n-1)); m_n = decay * m_(n-1) + weight * loss; divided by 1 - decay**n
    return (decay * (1.0 - decay ** (n - 1)) * previous + weight * loss) / (1.0 - decay ** n)


#: Weight files of any layout transformers reads (one file or shards with their index, safetensors or
#: pickle): those of an earlier model that the new save does not write are removed with the move, so
#: no shard of another model stays beside the new one (``from_pretrained`` would skip them while a
#: single ``model.safetensors`` is there, but they would fill the folder and mislead a reader).
_WEIGHT_FILE_PATTERNS = ("model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json",
                         "pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json")


def model_files_in(folder) -> List[str]:
    """The files of :data:`MODEL_FILES`, :data:`RUN_FIGURES`, :data:`RUN_TABLES` and
    :data:`RUN_RECORDS`, and the weight files of any layout (:data:`_WEIGHT_FILE_PATTERNS`), that
    ``folder`` holds: every file a save into it (:func:`save_atomically`) replaces or removes (a
    model, or part of one, is there when this is not empty). A folder holding only another model's
    ``pytorch_model.bin`` or shards, or a decoder's report, was taken for empty, and the save at the
    end of the run removed them without ``--overwrite``."""
    folder = Path(folder)
    named = [f for f in dict.fromkeys(MODEL_FILES + RUN_FIGURES + RUN_TABLES + RUN_RECORDS) if (folder / f).exists()]
    weights = sorted({p.name for pattern in _WEIGHT_FILE_PATTERNS for p in folder.glob(pattern) if p.is_file()}
                     - set(named)) if folder.is_dir() else []
    return named + weights


@dataclass
class TrainingConfig:
    """Optimisation and evaluation settings (the ``training:`` section of a YAML config).

    Attributes:
        learning_rate: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        batch_size: windows per optimisation step.
        max_epochs: passes over the training windows (the budget is whichever of ``max_epochs``
            and ``max_steps`` ends first).
        max_steps: cap on optimisation steps.
        warmup_ratio: fraction of the steps with linear warm-up before the cosine decay.
        max_grad_norm: gradient clipping norm.
        eval_every: validate every this many steps (``None``: once per epoch), and at the last
            step. ``training_log.json`` gets an entry at these steps with the running training
            loss (``train_loss``: exponential, weight 0.05 per step, bias-corrected as Adam's moment
            estimates so the first steps weigh no more than the others, as the progress bar shows it
            (:func:`running_loss`); not the mean of the interval nor since step 0), also when there is no validation split (then the entry has no validation
            figures), so ``training_curves.png`` draws the training loss of every run.
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` (Accelerate). ``False`` is taken as
            ``"no"``: YAML 1.1 reads an unquoted ``mixed_precision: no`` as the boolean False.
        seed: seed of initialisation, shuffling and sampling, in ``[0, 2**32 - 1]`` (Accelerate's
            ``set_seed`` seeds numpy's legacy generator).
        generate_test: after the last step, generate the whole test split (teacher-forced past)
            and score its fidelity (``test/id_f1``, spike-timing F1, ``test/rate_corr`` ...) and
            draw ``test_generation.png``. ``False`` skips it (the slowest part of a short run:
            97 of 198 s of an 8-step run on 860 test windows): ``metrics.json`` then says so in
            ``test/generation``, and the test losses, baselines, NLL intervals and retrieval are
            written as before; ``neuroformer generate`` and ``neuroformer evaluate`` score the
            model later.
        generation_temperature, generation_top_p: sampling for the test-split generation.
        generation_batch_size: windows generated in parallel; with ``generate_test``, a batch whose
            estimated memory exceeds half of the machine's is refused before the first step
            (:func:`~hf_neuroformer.generation.check_generation_batch_memory`, charged the longest
            past of the test windows, :func:`~hf_neuroformer.generation.longest_generation_past`), not
            after training.
        eval_batch_size: windows per evaluation batch.
        gradient_accumulation_steps: micro-batches accumulated (through Accelerate's
            ``accumulate``) per optimisation step. ``batch_size`` stays the number of windows per
            optimisation step, summed over processes and micro-batches, so each process loads
            ``batch_size / (gradient_accumulation_steps * num_processes)`` windows at a time (it
            must divide). The loss of a step is the mean over all labelled tokens of the whole
            batch (id and dt terms each over their own tokens, as the model's loss), not the mean
            of per-micro-batch means: windows hold different numbers of spikes, so a mean of means
            would weight the spikes of sparse micro-batches more and accumulation would no longer
            be the same update as one large batch. The contrastive term (``contrastive_loss_weight``
            > 0) is the exception: InfoNCE contrasts the windows of one micro-batch, gathered over
            all processes (each process's micro-batch, ``batch_size / gradient_accumulation_steps``
            windows in all, as CLIP does) but not across accumulated micro-batches, and the step's
            term is the mean of its micro-batches' InfoNCE (over those that have one: two windows
            with a token of a contrastive modality among those of all processes), so it depends on
            ``batch_size / gradient_accumulation_steps``, not on the number of processes. With
            ``config.contrastive_gather_across_processes=False`` each process contrasts its own
            micro-batch only, and the step's term is the mean over the micro-batches of every
            process that have one: that of one process with ``gradient_accumulation_steps *
            num_processes`` accumulated micro-batches (a run on several processes warns of it).
        save_every: write a resumable checkpoint (Accelerate ``save_state``: model, optimizer,
            scheduler, RNG states, plus the data position and the validation selection) every
            this many steps and at the last step into ``output_dir/checkpoints/step-NNNNNNNN``
            (``None``: none).
        save_total_limit: keep only this many most recent checkpoints.
        attn_implementation: ``"sdpa"`` (default) or ``"eager"``; ``"flash_attention_2"`` is
            refused with an error naming what is missing (the package, or support in this
            model's masks).
        activation_checkpointing: recompute each layer's activations in the backward pass
            (transformers' ``activation_checkpointing_enable``): less memory, about a third
            more compute.
        torch_compile: compile the model with ``torch.compile`` (through Accelerate's dynamo
            plugin) with ``torch_compile_backend``.
        shuffle_buffer_size: when training streams a prepared directory (``neuroformer
            prepare``), windows are shuffled in a buffer of this many windows (``datasets``
            ``IterableDataset.shuffle``, reseeded every epoch) after the shard order is shuffled;
            memory holds the buffer, not the recording. The shuffle is local: a shard is read in
            time order, so an epoch's first batches come from the first ``shuffle_buffer_size``
            windows of its first shard (the start of the recording; with ``K`` interleaved shards,
            its first ``shuffle_buffer_size * K`` train windows): a larger buffer, or more shards,
            mixes more.

    Every field is checked on construction (also by ``dataclasses.replace``): booleans must be
    real ``bool`` (``"false"`` is refused, see
    :func:`~hf_neuroformer.configuration_neuroformer.checked_bool`), integer fields integers
    (``3.0`` is taken, ``3.7`` refused), float fields finite numbers in their range.

    Raises:
        ValueError: ``"training.<field>: expected ..., got ..."`` naming the first bad field.
    """

    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 32
    max_epochs: int = 12
    max_steps: int = 3000
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    eval_every: Optional[int] = None
    mixed_precision: str = "no"
    seed: int = 0
    generation_temperature: float = 1.0
    generation_top_p: float = 1.0
    generation_batch_size: int = 256
    eval_batch_size: int = 128
    gradient_accumulation_steps: int = 1
    save_every: Optional[int] = None
    save_total_limit: int = 2
    attn_implementation: str = "sdpa"
    activation_checkpointing: bool = False
    torch_compile: bool = False
    torch_compile_backend: str = "inductor"
    shuffle_buffer_size: int = 2048
    generate_test: bool = True

    def __post_init__(self):
        # one rule per type (configuration_neuroformer's checked_*): a string is never a bool
        # ("false" is truthy: it switched torch_compile on), 3.7 is never an integer step count
        if self.mixed_precision is False:
            self.mixed_precision = "no"  # YAML reads an unquoted `mixed_precision: no` as False
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"training.mixed_precision: expected 'no', 'bf16' or 'fp16', got {self.mixed_precision!r}")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f"training.attn_implementation: expected one of {list(ATTN_IMPLEMENTATIONS)}, "
                             f"got {self.attn_implementation!r}")
        if not (isinstance(self.torch_compile_backend, str) and self.torch_compile_backend):
            raise ValueError(f"training.torch_compile_backend: expected a backend name, got {self.torch_compile_backend!r}")
        for name in ("activation_checkpointing", "torch_compile", "generate_test"):
            setattr(self, name, checked_bool(name, getattr(self, name), owner="training"))
        for name in ("batch_size", "max_epochs", "max_steps", "eval_batch_size", "generation_batch_size",
                     "gradient_accumulation_steps", "save_total_limit", "shuffle_buffer_size"):
            setattr(self, name, checked_int(name, getattr(self, name), "an integer >= 1", lambda v: v >= 1,
                                            owner="training"))
        for name in ("eval_every", "save_every"):
            if getattr(self, name) is not None:
                setattr(self, name, checked_int(name, getattr(self, name), "an integer >= 1 or None",
                                                lambda v: v >= 1, owner="training"))
        # Accelerate's set_seed seeds numpy's legacy generator: above 2**32 - 1 the run failed once the data
        # was read, with numpy's "Seed must be between 0 and 2**32 - 1" naming no field
        self.seed = checked_int("seed", self.seed, f"an integer in [0, {MAX_TRAINING_SEED}] (Accelerate's set_seed "
                                "seeds numpy's legacy generator)", lambda v: 0 <= v <= MAX_TRAINING_SEED, owner="training")
        self.learning_rate = checked_float("learning_rate", self.learning_rate, "a positive number",
                                           lambda v: v > 0, owner="training")
        self.weight_decay = checked_float("weight_decay", self.weight_decay, "a finite number >= 0",
                                          lambda v: v >= 0, owner="training")
        self.max_grad_norm = checked_float("max_grad_norm", self.max_grad_norm, "a positive number (0 would zero "
                                           "every gradient)", lambda v: v > 0, owner="training")
        self.warmup_ratio = checked_float("warmup_ratio", self.warmup_ratio, "a value in [0, 1)",
                                          lambda v: 0 <= v < 1, owner="training")
        self.generation_temperature = checked_float("generation_temperature", self.generation_temperature,
                                                    "a positive number", lambda v: v > 0, owner="training")
        self.generation_top_p = checked_float("generation_top_p", self.generation_top_p, "a value in (0, 1]",
                                              lambda v: 0 < v <= 1, owner="training")


#: Numbers in exponent notation that PyYAML (YAML 1.1) reads as strings: without a dot (``1e-3``,
#: ``5E4``) or with an unsigned exponent (``1.0e5``). YAML 1.2 and JSON read them as floats.
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def _unique_key_loader():
    """A ``yaml.SafeLoader`` that refuses a key given twice in one mapping: PyYAML keeps the
    last value silently, so a second ``training:`` section at the end of a config dropped every
    setting of the first one. It also reads ``1e-3`` / ``1.0e5`` as floats (YAML 1.2, JSON): PyYAML
    follows YAML 1.1, which needs a dot and a signed exponent, so ``learning_rate: 1e-3`` was the
    string ``'1e-3'`` and refused ("expected a positive number, got '1e-3'")."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # an unhashable key: SafeLoader's own error says so
                    break
                if first != key_node.start_mark.line + 1:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} given twice (first at line {first}); keep one", key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))
    return UniqueKeyLoader


def _placement_hints(unknown, here, elsewhere, elsewhere_text: str) -> list:
    """For each key of ``unknown`` (a YAML mapping's keys that are not fields of its level): ``"'k' is
    <elsewhere_text>"`` when it is a field of the other level (``elsewhere``), else ``"did you mean 'x'
    for 'k'?"`` for the closest name of ``here`` (:func:`difflib.get_close_matches`); keys with neither
    get no hint."""
    import difflib

    hints = []
    for key in unknown:
        if key in elsewhere:
            hints.append(f"{key!r} is {elsewhere_text}")
        elif close := difflib.get_close_matches(key, here, n=1):
            hints.append(f"did you mean {close[0]!r} for {key!r}?")
    return hints


def _in_config_file(err: ValueError, where: str) -> ValueError:
    """``err`` (a refusal of a config value) with ``where`` (the YAML file and its section) before
    its message, of the same class where that class takes a message alone."""
    try:
        return type(err)(f"{where}: {err}")
    except TypeError:
        return ValueError(f"{where}: {err}")


def load_yaml_config(path, *, training_fields: bool = False, config_fields: bool = False,
                     field: str = "path") -> Tuple:
    """Read a YAML config: top-level keys are :class:`NeuroformerConfig` fields, the optional
    ``training:`` mapping holds :class:`TrainingConfig` fields.

    Returns:
        ``(config, training)``; with ``training_fields=True`` also the names of the training
        fields the file gives (a tuple, file order), which ``neuroformer train --resume`` applies
        over the checkpoint's settings (the others keep the checkpoint's values, not the defaults);
        with ``config_fields=True`` then the names of the :class:`NeuroformerConfig` fields the
        file gives (a tuple, file order), which ``neuroformer train`` on a prepared directory
        applies over the directory's config (:func:`config_over_prepared`).

    Every error opens with ``field`` and then the file's path (``"--config"`` from the command line,
    ``neuroformer train --config FILE``; by default ``"path"``, this argument's name), e.g.
    ``path: 'my.yaml': unknown training field ['max_step'] ...``.

    Raises:
        FileNotFoundError: the file does not exist, or ``path`` is a folder.
        OSError: the file cannot be opened or read (e.g. :class:`PermissionError`), of the same class,
            with the system's reason.
        ValueError: the file is empty or holds only whitespace (a file of ``{}`` or of only comments
            gives the default settings), the file is not valid YAML (names the line and column), a key is given
            twice in one mapping (e.g. two ``training:`` sections; names both lines), the document or its
            ``training:`` entry is not a mapping, or a key is not a known field (named, with the section it
            belongs in when it is a field of the other one, e.g. ``max_steps`` at the top level, or else the
            closest field name); a value that :class:`NeuroformerConfig` or :class:`TrainingConfig`
            refuses (their message, after ``field``, the file's path and ``(top level)`` or
            ``(training: section)``).
    """
    import yaml

    path = Path(path)
    where_file = f"{field}: {str(path)!r}"  # every error opens with the argument (--config) and then the file
    if path.is_dir():
        raise FileNotFoundError(f"{where_file} is a folder; expected a YAML file such as configs/default.yaml")
    if not path.is_file():
        raise FileNotFoundError(f"{field}: no such file {str(path)!r}")
    try:
        with open(path) as f:
            text = f.read()
        if not text.strip():  # an empty file was read as the default settings, silently
            raise ValueError(f"{where_file} is empty; expected a YAML file of NeuroformerConfig fields "
                             "with an optional 'training:' section, such as configs/default.yaml (write '{}' in it "
                             "to use the default settings)")
        raw = yaml.load(text, Loader=_unique_key_loader())
        # a document of only comments (or 'null') is the defaults; '0', 'false' or '""' is refused below as not a
        # mapping (it was taken for an empty one)
        raw = {} if raw is None else raw
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{where_file} is not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{where_file} is not a YAML text file ({err})") from None
    except OSError as err:  # unreadable (permissions): the system's reason after the argument and the file
        raise type(err)(f"{where_file} cannot be read ({err.strerror or err})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{where_file}: expected a mapping of config fields, got {type(raw).__name__}")
    train_raw = raw.pop("training", {})
    train_raw = {} if train_raw is None else train_raw
    if not isinstance(train_raw, dict):
        raise ValueError(f"{where_file}: training: expected a mapping of training fields (e.g. 'training: {{max_steps: "
                         f"100}}'), got {type(train_raw).__name__} {train_raw!r}")
    import inspect

    # only NeuroformerConfig's own fields (vocab_size comes from the tokenizer, not the file)
    known_model = {p for p in inspect.signature(NeuroformerConfig.__init__).parameters
                   if p not in ("self", "kwargs", "vocab_size")}
    known_train = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(raw) - known_model)
    if unknown:
        # a training field at the top level ('max_steps: 100') or a misspelt section ('trainig:') was
        # called an unknown NeuroformerConfig field without a word on where it belongs
        hints = _placement_hints(unknown, known_model | {"training"}, known_train,
                                 "a training field: put it under 'training:'")
        raise ValueError(f"{where_file}: unknown NeuroformerConfig {'field' if len(unknown) == 1 else 'fields'} {unknown}"
                         + (f" ({'; '.join(hints)})" if hints else "")
                         + "; NeuroformerConfig's docstring lists the fields, and TrainingConfig's those of "
                           "the 'training:' section")
    unknown = sorted(set(train_raw) - known_train)
    if unknown:
        hints = _placement_hints(unknown, known_train, known_model,
                                 "a NeuroformerConfig field: put it at the top level, not under 'training:'")
        raise ValueError(f"{where_file}: unknown training {'field' if len(unknown) == 1 else 'fields'} {unknown}"
                         + (f" ({'; '.join(hints)})" if hints else "")
                         + f"; known: {sorted(known_train)}")
    # a refused value named the field but not the file it came from ('NeuroformerConfig.hidden_size:
    # expected an integer, got '32''): the file and its section now come first
    try:
        config = NeuroformerConfig(**raw)
    except ValueError as err:
        raise _in_config_file(err, f"{where_file} (top level)") from None
    try:
        training = TrainingConfig(**train_raw)
    except ValueError as err:
        raise _in_config_file(err, f"{where_file} (training: section)") from None
    return (config, training) + ((tuple(train_raw),) if training_fields else ()) + \
        ((tuple(raw),) if config_fields else ())


def config_over_prepared(prepared, config: NeuroformerConfig, given: Sequence[str]) -> NeuroformerConfig:
    """The config a ``--config`` file gives for training on the prepared directory ``prepared``:
    the directory's own config (the one its windows were tokenized with) with the fields the file
    sets (``given``, from :func:`load_yaml_config`) taken from ``config``. A file that sets only
    network fields, or only a ``training:`` section, then trains on the prepared windows: built
    on the defaults instead, every window field it left out (``current_window``,
    ``dt_resolution``, ...) differed from the directory's and the run was refused. A window field
    the file does set to another value is still refused by :func:`train`, naming it.

    Returns ``config`` unchanged when the directory has no readable ``config.json`` (``train``
    refuses such a directory, naming the file)."""
    path = Path(prepared) / "config.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return config
    if not isinstance(stored, dict):
        return config
    mine = config.to_dict()
    return NeuroformerConfig.from_dict({**stored, **{k: mine[k] for k in given if k in mine}})


def check_output_dir(output_dir, overwrite: bool = False) -> Path:
    """Refuse to write over a directory that already holds a model, unless ``overwrite``.

    Raises:
        FileExistsError: naming the directory, the files found and the ``--overwrite`` flag; a
            directory of prepared windows (``neuroformer prepare``), with or without ``overwrite``;
            or a path above it that is a file (:func:`~hf_neuroformer.io.output_folder.check_writable_parent`).
        PermissionError: the nearest existing folder is not writable.
    """
    from .io.output_folder import check_writable_parent

    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output_dir: {str(out)!r} exists and is not a directory")
    check_writable_parent(out, "output_dir")  # a path under a file failed after the whole run
    if _is_prepared_manifest(out):
        # with overwrite the model's config.json, vocab.json and splits.json replaced the directory's, and
        # its shards (other units' ids) no longer trained: 'input_ids: expected ids in [0, 8), got [0, 10]'
        raise FileExistsError(
            f"output_dir: {str(out)!r} is a directory of prepared windows ('neuroformer prepare': manifest.json); a "
            "model written there would replace its config.json, vocab.json and splits.json and spoil the data, "
            "--overwrite or not: choose another output directory")
    finish_interrupted_save(out)  # a save killed after its commit: the folder holds its new model
    found = model_files_in(out)
    if found and not overwrite:
        raise FileExistsError(
            f"output_dir: {str(out)!r} already holds a model ({', '.join(found)}); choose another directory "
            "or pass --overwrite (overwrite=True) to replace it"
        )
    return out


#: The lock file a run holds in its output folder (:func:`output_dir_lock`): its pid and host.
RUN_LOCK = ".neuroformer-run.lock"


class OutputDirLockedError(FileExistsError):
    """Another run (``train`` or ``finetune``) is writing into the same output folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextlib.contextmanager
def output_dir_lock(output_dir, command: str = "train"):
    """Hold the lock file :data:`RUN_LOCK` (``{"pid": ..., "host": ...}``, created with
    ``O_CREAT | O_EXCL``) in ``output_dir`` for the block: two runs into one folder at once wrote
    each other's checkpoints and models, and each run's checkpoint save removed every
    ``.tmp-step-*`` there, the other run's checkpoint being written included. Only the launch's main
    process (:func:`~hf_neuroformer.argument_checks.is_main_rank`) takes it; other ranks yield
    without a lock. ``output_dir`` (and the folders above it) is created if missing and removed
    again, if still empty, when the block ends. A lock left by a killed run (its pid is not running on
    this host) is taken over, saying so; the lock is removed when the block ends, unless another run
    took it over meanwhile. A path that is a file is left to the output checks (no lock).

    Raises:
        OutputDirLockedError (a ``FileExistsError``): naming the folder, the other run's pid and host,
            and how to clear a stale lock (a run on another host cannot be checked: delete the file
            when no run is using the folder).
    """
    from .io.output_folder import check_writable_parent, missing_folders, remove_empty_folders

    try:
        out = Path(output_dir)
    except TypeError:  # not a path: left to the run's own checks
        out = None
    if out is None or not is_main_rank() or (out.exists() and not out.is_dir()):
        yield None
        return
    check_writable_parent(out, "output_dir")
    created = missing_folders(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUN_LOCK
    host = socket.gethostname()
    mine = json.dumps({"pid": os.getpid(), "host": host, "command": command})
    for attempt in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                held = json.loads(path.read_text())
                pid, their_host = int(held["pid"]), str(held["host"])
            except FileNotFoundError:  # released meanwhile
                continue
            except (OSError, ValueError, KeyError, TypeError):
                pid, their_host = None, None
            if attempt == 0 and pid is not None and their_host == host and not _pid_alive(pid):
                print(f"[neuroformer] {command}: taking over the lock {str(path)!r} of run pid {pid}, which is no "
                      "longer running (killed?)")
                path.unlink(missing_ok=True)
                continue
            who = (f"pid {pid} on host {their_host!r}" if pid is not None
                   else "a run whose lock file cannot be read")
            raise OutputDirLockedError(
                f"output_dir: {str(out)!r} is in use by another neuroformer run ({who}; lock file {str(path)!r}): two "
                "runs into one folder overwrite each other's checkpoints and model; wait for it or choose another "
                "--output-dir. If no run is using the folder (a run killed on another host), delete the lock file; "
                "a lock of a process no longer running on this host is taken over by itself") from None
        with os.fdopen(fd, "w") as f:
            f.write(mine)
        break
    else:
        raise OutputDirLockedError(f"output_dir: {str(out)!r}: the lock file {str(path)!r} keeps changing; "
                                   "another run is starting into the folder: choose another --output-dir")
    try:
        yield path
    finally:
        try:
            if path.read_text() == mine:
                path.unlink()
        except OSError:
            pass
        remove_empty_folders(created)


#: What a checkpoints folder of this package holds: ``train``'s resumable checkpoints (and the
#: half-written ones of a run killed while saving) and ``Trainer``'s (``finetune --keep-checkpoints``).
_OWN_CHECKPOINT_PATTERNS = (".tmp-step-*", "checkpoint-*")  # and train's step-<step number> (_CHECKPOINT_NAME)
#: Files a file browser leaves in any folder it shows (macOS Finder, Windows Explorer): deleted with
#: the checkpoints, not counted as another tool's files (a folder opened in Finder was refused for them)
_OS_METADATA_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


def check_checkpoint_folder(output_dir, deleted_by: str = "--overwrite would delete the folder") -> None:
    """Refuse ``output_dir/checkpoints`` when it holds anything but checkpoints of ``train`` or
    ``finetune`` (:data:`_OWN_CHECKPOINT_PATTERNS`; a file browser's ``.DS_Store``, ``Thumbs.db`` or
    ``desktop.ini`` is not counted): ``--overwrite`` deletes that folder (and
    ``finetune`` does when it ends), and it deleted whatever another tool or the user kept there (a
    folder named ``checkpoints`` is common). ``deleted_by`` says what would delete it.

    Raises:
        FileExistsError: naming the folder and the entries that are not checkpoints.
    """
    ckpt = Path(output_dir) / CHECKPOINT_DIR
    if not ckpt.is_dir():
        return
    # a folder named step-* but not step-<step number> (a user's 'step-00000002 copy') is no checkpoint of train's:
    # resume and save_total_limit pass over it, and --overwrite deleted it with the checkpoints
    foreign = sorted(p.name for p in ckpt.iterdir()
                     if not (p.is_dir() and (_CHECKPOINT_NAME.fullmatch(p.name)
                                             or any(fnmatch.fnmatchcase(p.name, q) for q in _OWN_CHECKPOINT_PATTERNS)))
                     and not (p.is_file() and p.name in _OS_METADATA_FILES))
    if foreign:
        one = len(foreign) == 1  # "holds 'x', which is not a checkpoint": one entry read as several
        raise FileExistsError(
            f"output_dir: {str(ckpt)!r} holds {first_few(foreign)}, "
            f"{'which is not a checkpoint' if one else 'which are not checkpoints'} of neuroformer train or finetune; "
            f"{deleted_by} with {'it' if one else 'them'}: move {'it' if one else 'them'} out or choose another "
            "--output-dir")


def check_checkpoints_not_a_file(output_dir, save_every: Optional[int], overwrite: bool = False) -> None:
    """Refuse a file named ``checkpoints`` in ``output_dir`` when the run would write checkpoints there
    (``save_every``) or delete that folder (``overwrite``): the run failed at its first checkpoint, after
    ``save_every`` steps, with a bare "[Errno 17] File exists" (and ``--overwrite`` with "Not a directory").

    Raises:
        FileExistsError: naming the file and what to do.
    """
    ckpt = Path(output_dir) / CHECKPOINT_DIR
    if not (save_every or overwrite):
        return
    if ckpt.is_symlink() and not ckpt.exists():
        # a link to a folder that is gone (an unmounted disk): it was called "a file, not a folder"
        raise FileExistsError(
            f"output_dir: {str(ckpt)!r} is a link to {os.readlink(ckpt)!r}, which does not exist (a disk not "
            "mounted?); train writes its resumable checkpoints (training.save_every, --save-every) into that "
            "folder: mount it, make the folder, or remove the link")
    if ckpt.exists() and not ckpt.is_dir():
        raise FileExistsError(
            f"output_dir: {str(ckpt)!r} is a file, not a folder; train writes its resumable checkpoints "
            f"(training.save_every, --save-every) into a folder of that name"
            f"{' and --overwrite deletes that folder' if overwrite else ''}: move the file out or choose another "
            "--output-dir")


def umask_file_mode() -> int:
    """The permission bits ``open()`` gives a new file: ``0o666`` masked by the process umask."""
    mask = os.umask(0o077)  # reading the umask means setting it; a restrictive value meanwhile
    os.umask(mask)
    return 0o666 & ~mask


def open_up_safetensors(folder) -> None:
    """Give every ``*.safetensors`` file under ``folder`` the mode of an ordinary new file.

    safetensors 0.8 writes through a temporary file that it creates with mode 0600 and renames
    into place (safetensors/safetensors issue #782, open as of 2026-12), so ``model.safetensors``
    was readable by its owner only while ``config.json`` beside it followed the umask: a lab
    member could see a shared model directory but not load it."""
    mode = umask_file_mode()
    for p in Path(folder).rglob("*.safetensors"):
        if p.is_file():
            os.chmod(p, mode)


def save_atomically(output_dir, model, tokenizer, extra_json: Dict[str, object], overwrite: bool = False,
                    figures: Optional[Dict[str, object]] = None, tables: Optional[Dict[str, str]] = None) -> None:
    """Write the model, tokenizer, JSON files and figures into ``output_dir`` without leaving a
    half-written model: everything is written to a staging folder ``.tmp-save-*`` inside it, then
    moved into place as one transaction (:func:`hf_neuroformer.save_journal.replace_files`): a
    process killed before the journal ``.save-in-progress.json`` is committed leaves the old model
    untouched, one killed after it leaves a journal that the next ``from_pretrained`` of the
    Neuroformer classes (or the next ``train`` / ``finetune`` into ``output_dir``) completes, so
    the folder never holds a mix of the new model's files and the old one's.

    Args:
        figures: file name -> :class:`matplotlib.figure.Figure` (or None: not drawn), written
            with ``savefig`` (format from the suffix). A name of :data:`RUN_FIGURES` that an earlier run left in
            ``output_dir`` and this call does not write is removed, so no figure of another
            run stays beside the new model.
        tables: file name -> text (CSV), written as given; a name of :data:`RUN_TABLES` that
            this call does not write is removed, as for the figures.

    A ``"metrics.json"`` dict of ``extra_json`` gets ``weights_tensors_sha256``: the fingerprint of the weights
    as written here (:func:`hf_neuroformer.generation.tensors_sha256` of the staged files),
    set in that dict too, so the metrics a run returns equal the file; ``neuroformer push`` compares it
    with the folder's weights, so a card cannot show these metrics for weights saved there later.

    A JSON record of :data:`RUN_RECORDS` that ``extra_json`` does not write is removed too, and so are
    the records of an unfinished run (:data:`~hf_neuroformer.run_record.UNFINISHED_TRAIN`,
    :data:`~hf_neuroformer.run_record.UNFINISHED_FINETUNE`), in the same transaction: the folder
    then holds this model, not the one such a record speaks of.
    """
    from .io.output_folder import missing_folders, remove_empty_folders

    out = check_output_dir(output_dir, overwrite)
    created = missing_folders(out)  # a new a/b/c (and a/b, a): removed again if the save fails before committing
    out.mkdir(parents=True, exist_ok=True)
    figures = {name: fig for name, fig in (figures or {}).items() if fig is not None}  # None: not drawn
    tmp = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if isinstance(extra_json.get("metrics.json"), dict):  # which weights these metrics score: the bytes written
            from .generation import tensors_sha256
            from .hub import WEIGHTS_SHA256_KEY

            extra_json["metrics.json"][WEIGHTS_SHA256_KEY] = tensors_sha256(tmp, "output_dir")
        for name, obj in extra_json.items():  # strict JSON: an undefined metric (NaN) is written as null
            with open(tmp / name, "w") as f:
                json.dump(json_safe(obj), f, indent=2, allow_nan=False)
        for name, fig in figures.items():
            fig.savefig(tmp / name, dpi=120)
        for name, text in (tables or {}).items():
            (tmp / name).write_text(text)
        open_up_safetensors(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # not committed: the old model is whole
        remove_empty_folders(created)  # a failed first save into a new a/b/c left the empty folders behind
        raise
    # from here on the save is committed: a failure leaves the journal, to be completed
    written = {p.name for p in tmp.iterdir()}
    stale_weights = [p.name for p in out.iterdir() if p.is_file() and p.name not in written
                     and any(fnmatch.fnmatch(p.name, pat) for pat in _WEIGHT_FILE_PATTERNS)]
    stale_outputs = [name for name in RUN_FIGURES if name not in figures] + [
        name for name in RUN_TABLES if name not in (tables or {})] + [
        name for name in RUN_RECORDS if name not in extra_json]
    # the record of a run not yet saved (this one's, or a killed one's): this save ends it
    stale_outputs += [name for name in UNFINISHED_RECORDS.values() if (out / name).is_file()]
    try:
        replace_files(out, tmp, remove=stale_outputs + stale_weights)
    except BaseException:
        if not (out / SAVE_JOURNAL).exists():  # failed before its commit: replace_files removed the staged files
            remove_empty_folders(created)
        raise
    # staging folders of saves killed before their commit (never part of a model)
    for stale in out.glob(STAGING_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _unfinished_train_record(output_dir, resumed_from: Optional[str] = None):
    """Hold the record of an unfinished ``train`` run (:data:`~hf_neuroformer.run_record.UNFINISHED_TRAIN`,
    :func:`~hf_neuroformer.run_record.write_unfinished_run`) in ``output_dir`` for the block, written
    as training starts (main process). The save of the model (:func:`save_atomically`) removes it in
    its transaction; a block left by an exception (Ctrl-C included) removes it when the run left no
    checkpoint of its own (the folder then holds what it held before, less the checkpoints
    ``--overwrite`` deleted), and keeps it beside the run's checkpoints, which it tells from the model.

    ``resumed_from``: the checkpoint a resumed run continues from (recorded as such). Its
    checkpoints and the older ones are not the run's, unless the record of the interrupted run it
    resumes is there: the checkpoints that record counted as that run's stay counted as this one's.
    """
    from .run_record import read_unfinished_run, unfinished_run_checkpoints

    out = Path(output_dir)
    earlier = read_unfinished_run(out, "train") if resumed_from is not None else None
    before = None  # None: the step-* folders there now
    if earlier and isinstance(earlier.get("checkpoints_before"), list):
        before = [n for n in earlier["checkpoints_before"] if isinstance(n, str)]
    path = write_unfinished_run(out, "train", before, **({"resumed_from": resumed_from} if resumed_from is not None else {}))
    try:
        yield path
    except BaseException as err:
        own = unfinished_run_checkpoints(out, "train") if path.is_file() else []
        if path.is_file() and not own:
            path.unlink(missing_ok=True)
        if isinstance(err, KeyboardInterrupt):
            # Ctrl-C (or timeout -s INT) printed a bare "interrupted": whether the run can be continued
            # was left to a look into the folder
            from .hub import add_note

            there = [p.name for p in _checkpoints(out / "checkpoints")] if (out / "checkpoints").is_dir() else []
            done = [n for n in there if n in own]
            if done:
                note = (f"its checkpoints are kept in {str(out / 'checkpoints')!r} (newest {done[-1]}) with the record "
                        f"{path.name}: the same command with --resume continues the run from there")
            elif there:  # a resumed run stopped before a checkpoint of its own: the one it resumed from is there
                note = (f"it wrote no checkpoint of its own; {there[-1]} in {str(out / 'checkpoints')!r} is kept, and "
                        "the same command with --resume continues from it")
            else:
                note = "it wrote no checkpoint, so there is nothing to --resume (checkpoints: --save-every N)"
            add_note(err, note)
        raise


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@torch.no_grad()
def _token_nll_sums(model, dataset, collator, batch_size: int, device, start: int = 0, stop: Optional[int] = None,
                    windows: Optional[Dict[str, list]] = None, progress: bool = False,
                    n_windows: Optional[int] = None):
    """Sums behind :func:`evaluate_token_nll` over ``dataset[start:stop]``: float64 tensor
    ``(id NLL, dt NLL, id NLL over every label, spike tokens, labelled tokens)``. With ``windows``
    (a dict of lists), the same pass also appends each window's ``window_start``, ``id_nll_sum``,
    ``dt_nll_sum`` and ``n_spike_tokens`` to it (the totals are summed as without it).
    ``progress``: a bar over the batches (``evaluating``, not left on a terminal; the package's
    :func:`~hf_neuroformer.progress.progress_bar`); without ``stop``, a streamed dataset's has
    its total from ``n_windows`` (its number of windows, for the bar only), none without it."""
    model.eval()
    s_id = s_dt = s_loss = 0.0
    n_spk = n_lab = 0
    batches = _eval_batches(dataset, collator, batch_size, start, stop, with_starts=windows is not None)
    if progress:
        from .progress import progress_bar

        n = stop if stop is not None else n_windows if isinstance(dataset, _iterable_dataset_type()) else len(dataset)
        total = None if n is None else math.ceil(max(n - start, 0) / batch_size)
        batches = progress_bar(batches, total=total, desc="evaluating", unit="batch", leave=False)
    for b in batches:
        if windows is not None:
            b, starts = b
            windows.setdefault("window_start", []).extend(float(x) for x in starts)
        b = batch_to_device(b, device)
        out = model(**b, return_dict=True, output_attentions=False, output_hidden_states=False)
        lg = torch.log_softmax(out.logits[:, :-1].float(), -1)
        dlg = torch.log_softmax(out.dt_logits[:, :-1].float(), -1)
        lab, dlab = b["labels"][:, 1:], b["dt_labels"][:, 1:]
        spike = dlab != -100
        id_lp = lg.gather(-1, lab.clamp(min=0)[..., None])[..., 0]  # log p(next unit id)
        s_id -= id_lp[spike].sum().item()
        dt_lp = dlg.gather(-1, dlab.clamp(min=0)[..., None])[..., 0]
        s_dt -= dt_lp[spike].sum().item()
        n_spk += int(spike.sum())
        if windows is not None:
            windows.setdefault("id_nll_sum", []).extend((-id_lp.masked_fill(~spike, 0.0).double().sum(1)).tolist())
            windows.setdefault("dt_nll_sum", []).extend((-dt_lp.masked_fill(~spike, 0.0).double().sum(1)).tolist())
            windows.setdefault("n_spike_tokens", []).extend(spike.sum(1).tolist())
        valid = lab != -100
        s_loss -= id_lp[valid].sum().item()
        n_lab += int(valid.sum())
    return torch.tensor([s_id, s_dt, s_loss, n_spk, n_lab], dtype=torch.float64)


def _eval_batches(dataset, collator, batch_size: int, start: int = 0, stop: Optional[int] = None,
                  with_starts: bool = False):
    """Collated batches of ``dataset[start:stop]`` in order; a streamed split
    (``datasets.IterableDataset``) is read once, front to back, holding one batch at a time.
    ``with_starts``: ``(batch, window starts of its rows)`` pairs instead."""
    if isinstance(dataset, _iterable_dataset_type()):
        for rows in _row_chunks(itertools.islice(dataset, start, stop), batch_size):
            yield (collator(rows), [r["window_start"] for r in rows]) if with_starts else collator(rows)
        return
    stop = len(dataset) if stop is None else stop
    for i in range(start, stop, batch_size):
        cols = dataset[i: min(i + batch_size, stop)]
        batch = collator([dict(zip(cols, vals)) for vals in zip(*cols.values())])
        yield (batch, cols["window_start"]) if with_starts else batch


def _row_chunks(rows, size: int):
    """Lists of ``size`` consecutive items of the iterable ``rows`` (the last one shorter)."""
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _iterable_dataset_type():
    import datasets

    return datasets.IterableDataset



def _nll_from_sums(sums: torch.Tensor, dt_loss_weight: float) -> Dict[str, float]:
    s_id, s_dt, s_loss, n_spk, n_lab = (float(x) for x in sums)
    if n_spk == 0:  # nothing to score: NaN, never a perfect-looking 0
        nan = float("nan")
        return {"id_nll": nan, "dt_nll": nan, "loss": nan, "n_spike_tokens": 0}
    return {
        "id_nll": s_id / n_spk,
        "dt_nll": s_dt / n_spk,
        "loss": s_loss / max(n_lab, 1) + dt_loss_weight * s_dt / n_spk,
        "n_spike_tokens": int(n_spk),
    }


@torch.no_grad()
@keeps_training_mode
def evaluate_token_nll(model, dataset, collator, batch_size: int = 128, device=None,
                       per_window: bool = False, progress: bool = False,
                       n_windows: Optional[int] = None) -> Dict[str, float]:
    """Mean next-spike NLL (nats per spike token) of ``model`` on a window dataset.

    Scored targets are the spike tokens (not BOS/EOS): ``id_nll`` uses the full softmax over the
    vocabulary, ``dt_nll`` the dt head. ``loss`` is the training objective (EOS included).

    ``per_window=True`` adds ``windows``: a dict of ``(n_windows,)`` arrays from the same pass,
    ``window_start`` (float64 s, the dataset's column), ``id_nll_sum`` and ``dt_nll_sum``
    (float64 nats summed over the window's spike tokens) and ``n_spike_tokens`` (int64), the
    per-window sufficient statistics of ``id_nll`` / ``dt_nll`` (for block-bootstrap intervals).

    ``progress=True`` shows a bar over the batches (``evaluating``, not left on a terminal; redrawn
    at most every 30 s into a log file; ``TQDM_DISABLE=1`` turns it off). A streamed dataset
    (``datasets.IterableDataset``) does not know its length: ``n_windows`` (its number of windows,
    e.g. from a prepared directory's manifest) gives the bar its total, which it has none without;
    the windows scored are the dataset's in any case.
    """
    device = device or next(model.parameters()).device
    windows = {} if per_window else None
    sums = _token_nll_sums(model, dataset, collator, batch_size, device, windows=windows, progress=progress,
                           n_windows=n_windows)
    out = _nll_from_sums(sums, model.config.dt_loss_weight)
    if per_window:
        out["windows"] = {"window_start": np.asarray(windows.get("window_start", []), dtype=np.float64),
                          "id_nll_sum": np.asarray(windows.get("id_nll_sum", []), dtype=np.float64),
                          "dt_nll_sum": np.asarray(windows.get("dt_nll_sum", []), dtype=np.float64),
                          "n_spike_tokens": np.asarray(windows.get("n_spike_tokens", []), dtype=np.int64)}
    return out


def split_nll_intervals(windows: Dict[str, np.ndarray], plan, ci_block_s: Optional[float] = None,
                        ci_block_s_option: str = "ci_block_s=",
                        window_span_s: Optional[float] = None, *, stacklevel: int = 2) -> Dict[str, object]:
    """95 % block-bootstrap intervals of the test ``id_nll`` and ``dt_nll`` (nats per spike token).

    ``windows``: :func:`evaluate_token_nll`'s ``windows`` (``per_window=True``) on the test split;
    ``plan``: the :class:`~hf_neuroformer.windows.SplitPlan` (its test segments define the blocks:
    trials, or ``ci_block_s`` s of a time split). Each block's NLL sums and spike-token count are
    resampled together and the NLL recomputed from their totals
    (:func:`~hf_neuroformer.metrics.bootstrap.block_bootstrap_ci`). ``ci_block_s_option``: how a
    null interval's reason names the block length to shorten (``"ci_block_s="`` from Python; the
    CLI passes ``"--ci-block-s"``; :func:`~hf_neuroformer.metrics.bootstrap.few_blocks_hint`).
    ``stacklevel``: where the warning of a block length without effect, or shorter than
    ``window_span_s`` (s), points, as ``warnings.warn`` takes it (keyword-only; 2: the caller of
    this function; :func:`train` passes its own caller's).

    Returns:
        ``test/id_nll_ci95``, ``test/dt_nll_ci95`` (``[low, high]`` nats, or None with a
        ``..._ci95_reason``), ``test/ci95_n_blocks``, ``test/ci95_blocks``, ``test/ci95_method``,
        ``test/ci95_block_s`` (``ci_block_s`` in a time split, None in a trial split).

    Raises:
        BootstrapInputError: ``ci_block_s`` not a finite number > 0 (named as ``ci_block_s``).
    """
    from .metrics.bootstrap import (block_bootstrap_ci, block_sums, ci_description, ci_entries, count_blocks,
                                    few_blocks_hint, warn_block_s_unused, window_blocks)

    ci_block_s, asked = resolve_block_s(ci_block_s)
    warn_block_s_unused(plan.mode, ci_block_s, ci_block_s_option, window_span_s, asked=asked,
                        stacklevel=stacklevel + 1)
    segments = plan.segments["test"]
    blocks, definition = window_blocks(windows["window_start"], segments, plan.mode, ci_block_s)
    n_blocks = count_blocks(blocks)
    hint = few_blocks_hint(windows["window_start"], segments, plan.mode, ci_block_s, ci_block_s_option)
    n = block_sums(windows["n_spike_tokens"], blocks, n_blocks)
    out: Dict[str, object] = {}
    for name in ("id_nll", "dt_nll"):
        s = block_sums(windows[f"{name}_sum"], blocks, n_blocks)
        out.update(ci_entries(f"test/{name}", block_bootstrap_ci(lambda a, b: a / b, s, n, hint=hint)))
    out.update(ci_description("test/", n_blocks, definition, block_s=ci_block_s if plan.mode == "time" else None))
    return out


def _evaluate_sharded(accelerator, model, dataset, collator, batch_size: int, n: Optional[int] = None,
                      progress: bool = False) -> Dict[str, float]:
    """:func:`evaluate_token_nll` with the windows split into one contiguous block per process
    and the sums added up across processes: every process gets the same figures (and so takes
    the same checkpoint-selection decision) for a fraction of the work. ``progress``: a bar over
    the main process's batches (its block: the blocks differ by one window at most), none on the
    other processes."""
    n = len(dataset) if n is None else n
    world, rank = accelerator.num_processes, accelerator.process_index
    lo, hi = n * rank // world, n * (rank + 1) // world
    sums = _token_nll_sums(model, dataset, collator, batch_size, accelerator.device, lo, hi,
                           progress=progress and accelerator.is_main_process)
    if world > 1:
        sums = accelerator.reduce(sums.to(accelerator.device), reduction="sum").cpu()
    return _nll_from_sums(sums, model.config.dt_loss_weight)


def _shifted_ce_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy (nats) of ``logits[:, :-1]`` against ``labels[:, 1:]``, -100 ignored."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                           ignore_index=-100, reduction="sum")


def _label_counts(batch) -> torch.Tensor:
    """``(labelled id tokens, labelled dt tokens)`` of a collated batch (targets after the shift)."""
    return torch.stack([(batch["labels"][:, 1:] != -100).sum(), (batch["dt_labels"][:, 1:] != -100).sum()])


def _contrasted_windows(batch, contrastive_head) -> torch.Tensor:
    """``(n contrastive modalities,)`` int64: the windows of a micro-batch that hold a token of each
    modality of the model's contrastive head (the windows its InfoNCE contrasts); empty without a
    head (None)."""
    counts = [] if contrastive_head is None else contrastive_head.contrasted_windows(batch.get("modality_inputs"))
    return torch.tensor(counts, dtype=torch.int64)


def _without_contrasted_windows(batch) -> dict:
    """``batch`` with every modality's ``mask`` False: the window of a process left without one at
    an epoch's end (its loss counts zero times) joins the step's forward, and with it the gathered
    InfoNCE of the processes (a collective), without being a negative of their windows."""
    inputs = {name: {**t, "mask": torch.zeros_like(t["mask"])} if "mask" in t else t
              for name, t in (batch.get("modality_inputs") or {}).items()}
    return {**batch, "modality_inputs": inputs} if inputs else batch


#: NeuroformerConfig fields that a model may change when it trains on a prepared directory: the
#: network. Every other field (windows, dt bins, block lengths, splits, vocabulary, special
#: tokens) was fixed when the windows were tokenized and must match.
NETWORK_FIELDS = (
    "hidden_size", "num_attention_heads", "num_past_layers", "num_hidden_layers", "intermediate_size", "hidden_act",
    "hidden_dropout", "attention_dropout", "layer_norm_eps", "initializer_range", "temporal_min_period",
    "temporal_max_period", "num_temporal_frequencies", "dt_loss_weight", "dt_conditioned_on_unit",
)


#: TrainingConfig fields held by the optimizer and scheduler states that ``resume`` restores
#: (AdamW's param groups, the scheduler's base learning rates): resuming with other values is refused.
STATE_TRAINING_FIELDS = ("learning_rate", "weight_decay")


#: TrainingConfig fields that draw an epoch's window order (``shuffle_buffer_size``: streamed runs only):
#: resuming from a checkpoint written inside an epoch with other values is refused.
ORDER_TRAINING_FIELDS = ("seed", "shuffle_buffer_size")

#: TrainingConfig fields that say how the training steps ran, which a resume may change (warned, used):
#: ``metrics.json``'s ``training_stretches`` records them for each stretch of steps that one run trained.
#: ``seed`` (the later epochs' window order and the dropout draws), ``warmup_ratio`` (the rebuilt schedule)
#: and ``max_grad_norm`` (the clipping) were warned about and used on resume, but recorded nowhere per step.
STRETCH_TRAINING_FIELDS = ("mixed_precision", "torch_compile", "torch_compile_backend", "attn_implementation",
                           "activation_checkpointing", "seed", "warmup_ratio", "max_grad_norm")


def _with_stretch(stretches: list, first: int, last: int, training: "TrainingConfig") -> list:
    """``stretches`` (``{"from_step", "to_step", <STRETCH_TRAINING_FIELDS>}``, oldest first) with steps
    ``first`` to ``last`` trained with ``training``'s settings: the last stretch extended where they are
    its settings and it ends at ``first - 1``, else a new one (none when ``last < first``)."""
    if last < first:
        return list(stretches)
    settings = {k: getattr(training, k) for k in STRETCH_TRAINING_FIELDS}
    if stretches and stretches[-1]["to_step"] == first - 1 and all(stretches[-1].get(k) == v for k, v in settings.items()):
        return [*stretches[:-1], {**stretches[-1], "to_step": last}]
    return [*stretches, {"from_step": first, "to_step": last, **settings}]


#: How messages about a prepared directory name it: ``train``'s argument and the CLI flag.
PREPARED_FIELD = "recording (--data)"


def no_past_note(n_past_spikes: int) -> str:
    """The line ``train`` and ``prepare`` print for ``max_past_length=1`` (the past windows hold only
    their BOS token, by design: ablate's state-only variant) in place of their advice to raise a
    token budget that cut ``n_past_spikes`` past-window spikes."""
    return ("[neuroformer] max_past_length=1: the past windows hold only their BOS token, no past spike "
            f"(by design, as ablate's state-only variant; {n_past_spikes} past-window spikes not read)")


def _prepared_setup(prepared: Path, config: Optional[NeuroformerConfig], stacklevel: int = 3):
    """Config, tokenizer, split plan, manifest and the rows of each split's shards (checked
    against the manifest) of a prepared directory (see :func:`train`)."""
    from .windows import PREPARED_FORMAT, SplitPlan, check_prepared_files

    if not (prepared / "manifest.json").is_file():
        if prepared.is_file():  # a recording's file: "has no manifest.json" said nothing of how to train on it
            raise ValueError(f"recording: {str(prepared)!r} is a file, not a prepared directory; train takes a "
                             f"SpikeRecording (rec = hf_neuroformer.io.load_recording({str(prepared)!r}); train(rec, "
                             "...)) or a directory written by 'neuroformer prepare' (prepare_windows)")
        if prepared.exists():
            raise FileNotFoundError(f"recording: {str(prepared)!r} has no manifest.json; pass a SpikeRecording, or a "
                                    "directory written by 'neuroformer prepare' (prepare_windows)")
        raise FileNotFoundError(f"recording: {str(prepared)!r} does not exist; pass a SpikeRecording or a prepared "
                                "directory")
    # every file it reads below, before any is read (a missing config.json trained a default config)
    check_prepared_files(prepared, PREPARED_FIELD)
    manifest = json.loads((prepared / "manifest.json").read_text())
    if manifest.get("format") != PREPARED_FORMAT:
        raise ValueError(f"recording: {str(prepared)!r} has manifest format {manifest.get('format')!r}, expected "
                         f"{PREPARED_FORMAT!r}")
    if config is not None and config.modalities:
        raise ValueError("config.modalities: training from a prepared directory does not carry modality inputs "
                         "yet; train on the recording itself (neuroformer train --data RECORDING)")
    stored = NeuroformerConfig.from_pretrained(prepared)
    if config is None:
        config = stored
    else:
        ref, mine = stored.to_dict(), config.to_dict()
        skip = set(NETWORK_FIELDS) | {"vocab_size", "transformers_version", "architectures", "auto_map",
                                      "_attn_implementation_autoset", "decoding_targets", "decoding_pool",
                                      "decoding_head_hidden_size", "decoding_generative_loss_weight"}
        diff = {k: (ref.get(k), mine.get(k)) for k in sorted(set(ref) | set(mine))
                if k not in skip and not k.startswith("_") and ref.get(k) != mine.get(k)}
        if diff:
            field, (want, got) = next(iter(diff.items()))
            raise ValueError(
                f"config.{field}: the prepared directory {str(prepared)!r} was tokenized with {field}={want!r}, this "
                f"config has {got!r} (all differences: {diff}); a config may change the network only "
                f"({', '.join(NETWORK_FIELDS)}): prepare the windows again with this config"
            )
    tokenizer = NeuroformerTokenizer.from_pretrained(prepared)
    from .windows import _check_recorded_vocabulary

    # the vocab.json beside the shards against the vocabulary they were tokenized with (manifest.json): one of
    # the same length in another unit order (copied over from another prepare) trained on wrong unit identities
    _check_recorded_vocabulary(manifest, tokenizer, f"{PREPARED_FIELD} {str(prepared)!r}",
                               "its vocab.json is not the one 'neuroformer prepare' wrote with these windows; restore "
                               "it or prepare the windows again (neuroformer prepare)",
                               stacklevel=stacklevel)
    # the tokenizer's, which the shards' ids refer to: a directory prepared with a config that brought another
    # model's vocab_size along (kept then) trained a model that refused its own tokenizer when loaded
    config.vocab_size = len(tokenizer)
    from .tokenization_neuroformer import check_tokenizer_windows

    # a directory whose tokenizer cut other windows than its config.json says (prepared with another tokenizer)
    check_tokenizer_windows(tokenizer, config, f"the windows of {str(prepared)!r} are not those of its config.json; "
                            "prepare the windows again (neuroformer prepare)")
    plan = SplitPlan.read(prepared / "splits.json")
    # every shard against the manifest (rows, sha256): a shard swapped for another split's is refused
    rows = verify_prepared(prepared, SPLITS, field=PREPARED_FIELD)
    return config, tokenizer, plan, manifest, rows


def _shard_watch(prepared: Path, manifest: dict):
    """A check that the shards of a prepared directory are still the ones this run verified:
    ``datasets`` opens them again at every epoch and every evaluation, so a ``neuroformer prepare
    --overwrite`` into the directory during a run (same shard names) had the steps after it train
    on the new windows, other units' ids or settings, without a word. A shard whose file identity
    changed is hashed again: its manifest sha256 still matching (copied back, touched) is fine.

    Raises (from the returned function):
        RuntimeError: naming the directory and the shard that changed or went missing.
    """
    from .windows import file_identity, file_sha256

    sha = {s["path"]: s.get("sha256") for e in manifest["splits"].values() for s in e["shards"]}
    seen = {p: file_identity(prepared / p) for p in sha}

    def check() -> None:
        for p, was in seen.items():
            now = file_identity(prepared / p)
            if now == was:
                continue
            if now is not None and sha[p]:
                if file_sha256(prepared / p) == sha[p]:
                    seen[p] = now
                    continue
            raise RuntimeError(
                f"{PREPARED_FIELD}: shard {str(prepared / p)!r} of the prepared directory this run streams "
                f"{'was deleted' if now is None else 'was replaced'} while the run read it (a 'neuroformer prepare "
                "--overwrite' into it?); the run stops rather than train on other windows than it verified. Its "
                "checkpoints hold the steps before: prepare into another folder while a run reads one")
    return check


def _streamed_batches(dataset, epoch: int, micro_batch: int, collator, device, skip: int = 0):
    """Collated micro-batches (on ``device``) of one epoch of a streamed split, the first
    ``skip`` left out (a resumed run: the order is a function of the seed and the epoch)."""
    dataset.set_epoch(epoch)
    for rows in itertools.islice(_row_chunks(dataset, micro_batch), skip, None):
        yield batch_to_device(collator(rows), device)


#: How often (seconds) a worker of a torch elastic launcher checks that its launcher still runs.
LAUNCHER_CHECK_INTERVAL = 1.0
_launcher_watch_started = False


def end_with_launcher(interval: float = LAUNCHER_CHECK_INTERVAL) -> bool:
    """Make this process end when the ``torchrun`` / ``accelerate launch`` process that started it
    is gone.

    torch's elastic launcher starts each worker in a session of its own (``start_new_session``),
    so a Ctrl-C in the terminal reaches only the launcher, which ends the workers itself; but a
    launcher killed outright (``kill -9``, the out-of-memory killer, a job scheduler's hard
    kill) left its workers training on, in step with each other over gloo, writing checkpoints
    and the model into ``output_dir`` with nobody waiting for them. A daemon thread checks every
    ``interval`` seconds whether this process's parent is still the one it started with (a
    process whose parent dies is given to another one, ``init`` or a subreaper); when not, it
    says so on stderr and ends the process (``os._exit(1)``: checkpoints and model saves are
    written whole or not at all, so nothing is left half written).

    Only in a worker of torch's elastic launcher (``TORCHELASTIC_RUN_ID`` in the environment:
    ``torchrun``, ``accelerate launch`` with several processes); started once per process. A single
    process of ``accelerate launch`` (its simple launcher: the same session, no such variable) is
    not watched, and trains on after a ``kill -9`` of the launcher alone. Returns whether the watch runs.
    """
    import threading

    global _launcher_watch_started
    if _launcher_watch_started:
        return True
    if "TORCHELASTIC_RUN_ID" not in os.environ or not hasattr(os, "getppid"):
        return False
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        try:
            os.write(2, (f"[neuroformer] rank {os.environ.get('RANK', '?')}: the launcher (process {parent}) is gone; "
                         "this worker ends too (resume from the last checkpoint with --resume)\n").encode())
        finally:
            os._exit(1)

    threading.Thread(target=watch, name="neuroformer-launcher-watch", daemon=True).start()
    _launcher_watch_started = True
    return True


def _master_port_inherited() -> bool:
    """Whether this process's ``MASTER_PORT`` is the one its parent (the launcher) was started
    with, i.e. exported by a job script or container rather than set by ``accelerate launch``
    (which sets it only for several processes). Read from ``/proc/<ppid>/environ`` (Linux);
    False where that cannot be read, so the several-process warning keeps firing there."""
    try:
        raw = Path(f"/proc/{os.getppid()}/environ").read_bytes()
    except OSError:
        return False
    parent = dict(item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return parent.get(b"MASTER_PORT") == os.environ["MASTER_PORT"].encode()


def _check_attn_implementation(name: str) -> None:
    if name != "flash_attention_2":
        return
    import importlib.util

    if importlib.util.find_spec("flash_attn") is None:
        raise ImportError("training.attn_implementation='flash_attention_2' needs the flash-attn package, which is "
                          "not installed; pip install flash-attn (CUDA only), or use 'sdpa' (default) or 'eager'")
    raise ValueError("training.attn_implementation='flash_attention_2': flash-attn is installed, but this model's "
                     "attention takes arbitrary padding masks over the past window and cross-attention, which the "
                     "flash-attn kernels do not take yet; use 'sdpa' (default), which picks fused kernels itself")


_FP16_ON_CPU = ("'fp16' on a CPU: Accelerate applies neither fp16 autocast nor loss scaling there, so the run would "
                "silently be float32; use 'bf16' on CPUs (fp16 needs a GPU)")


def check_precision_device(mixed_precision: str, name: str = "training.mixed_precision") -> None:
    """Refuse ``mixed_precision="fp16"`` where the run would be on a CPU (``ACCELERATE_USE_CPU``
    set, or no accelerator that Accelerate knows: CUDA, MPS, XPU, NPU, MLU, MUSA, HPU, SDAA,
    Neuron or XLA, asked through ``accelerate.utils.is_*_available``), before any data is read: it
    was refused only once the recording was loaded and Accelerate started, naming the config field
    even for the flag.

    Raises:
        ValueError: naming ``name`` (``neuroformer train`` passes ``--mixed-precision``) and bf16.
    """
    import accelerate.utils as acc

    if mixed_precision != "fp16":
        return
    if acc.parse_flag_from_env("ACCELERATE_USE_CPU") or not any(
            getattr(acc, f"is_{kind}_available", lambda: False)() for kind in _ACCELERATOR_KINDS):
        raise ValueError(f"{name}: {_FP16_ON_CPU}")


# the devices Accelerate runs fp16 on, by the suffix of accelerate.utils.is_<kind>_available
_ACCELERATOR_KINDS = ("cuda", "mps", "xpu", "npu", "mlu", "musa", "hpu", "sdaa", "neuron", "torch_xla")


def _launcher_precision(training: TrainingConfig) -> TrainingConfig:
    """``training`` with the precision that ``accelerate launch --mixed_precision`` asked for.

    The launcher passes its precision as ``ACCELERATE_MIXED_PRECISION``, which Accelerate reads
    only when ``Accelerator(mixed_precision=None)``; ``train`` always passes
    ``training.mixed_precision`` (default ``"no"``), so ``accelerate launch --mixed_precision
    bf16 ... train`` (the README's command) silently ran in float32. The launcher's bf16 / fp16
    is taken when ``training.mixed_precision`` is ``"no"`` (and written to
    ``training_config.json``); a launcher ``"no"`` (its default) leaves ``training`` as it is.

    Raises:
        ValueError: the launcher's value is not a precision, or both ask for a different one
            of bf16 / fp16 (naming both and the flags).
    """
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "").strip().lower()
    if launcher in ("", "no", training.mixed_precision):
        return training
    if launcher not in ("bf16", "fp16"):
        raise ValueError(f"ACCELERATE_MIXED_PRECISION (accelerate launch --mixed_precision): expected 'no', 'bf16' "
                         f"or 'fp16' for training, got {launcher!r}")
    if training.mixed_precision != "no":
        raise ValueError(
            f"training.mixed_precision (--mixed-precision): {training.mixed_precision!r}, but the launcher asks for "
            f"{launcher!r} (accelerate launch --mixed_precision, ACCELERATE_MIXED_PRECISION); give one precision"
        )
    if is_main_rank():
        print(f"[neuroformer] mixed precision {launcher} (accelerate launch --mixed_precision; "
              "training.mixed_precision was 'no')")
    return dataclasses.replace(training, mixed_precision=launcher)


#: The name of a completed checkpoint folder, ``step-<step number>`` (:func:`_save_checkpoint` writes
#: ``step-NNNNNNNN``); the group is the step number.
_CHECKPOINT_NAME = re.compile(r"step-([0-9]+)")


def _checkpoints(root: Path):
    """Completed checkpoints under ``root`` (folders named ``step-<step number>``), oldest first, by step.

    Any folder whose name began with ``step-`` was taken for one, in text order: a copy a user kept
    beside them (``step-00000009 copy``) counted among the newest ``save_total_limit`` and was deleted
    by the next saves, and a copy of the newest one was resumed from instead of it."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := _CHECKPOINT_NAME.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def _incomplete_checkpoints(root: Path) -> str:
    """What the incomplete checkpoints (``.tmp-step-*``) under ``root`` are, named; "" when there is none."""
    partial = sorted(p.name for p in root.glob(".tmp-step-*")) if root.is_dir() else []
    return (f"{', '.join(partial)} is incomplete (a run stopped while writing it, or while deleting it: a checkpoint "
            "dropped by save_total_limit, or an earlier run's deleted by --overwrite, is renamed so before it is "
            "deleted)") if partial else ""


def latest_checkpoint(output_dir, training: Optional[TrainingConfig] = None) -> Path:
    """The newest resumable checkpoint of a training run in ``output_dir``.

    Args:
        training: the resuming run's settings, where known: with its ``save_every`` the message
            for no checkpoint names the step the first one is written at.

    Raises:
        FileNotFoundError: if there is none, saying how checkpoints are made (or that the only
            one, ``.tmp-step-*``, is incomplete: one being written or deleted when the run stopped).
    """
    root = Path(output_dir) / CHECKPOINT_DIR
    found = _checkpoints(root)
    if not found:
        partial = _incomplete_checkpoints(root)
        if partial:
            # 'checkpoints are written when --save-every is set' misled a run killed while saving its first one
            raise FileNotFoundError(f"resume: no complete checkpoint in {str(root)!r}: {partial}, so there is nothing "
                                    f"to resume from; {START_AFRESH}")
        if training is not None and training.save_every:
            # "checkpoints are written when --save-every is set" misled a run killed before its first one, which had it
            raise FileNotFoundError(
                f"resume: no checkpoint in {str(root)!r}, so there is nothing to resume from: with training.save_every "
                f"(--save-every) {training.save_every} a run writes its first one at step "
                f"{min(training.save_every, training.max_steps)}, so a run stopped before it is started again without "
                "--resume (resume=False); or the run's folder is another --output-dir (output_dir)")
        # the run's save_every unknown (no checkpoint holds it; 'neuroformer train --resume' takes it from there):
        # "written when --save-every is set" alone misled a run stopped before its first checkpoint
        raise FileNotFoundError(f"resume: no checkpoint in {str(root)!r}, so there is nothing to resume from: "
                                "checkpoints are written when training.save_every (--save-every) is set, the first "
                                "after save_every steps; a run stopped before its first one is started again without "
                                "--resume (resume=False), or the run's folder is another --output-dir (output_dir)")
    return found[-1]


def checkpoint_training_config(output_dir, *, stacklevel: int = 2,
                               warn_unknown: bool = True) -> Optional["TrainingConfig"]:
    """The training settings the newest checkpoint in ``output_dir/checkpoints`` was written with
    (``trainer_state.json``), or None when there is no checkpoint. ``neuroformer train --resume``
    starts from these, so a flag left out on resuming keeps the run's value instead of falling
    back to the default (e.g. ``max_steps`` 3000 for a run started with ``--max-steps 300``).

    Stored settings that are not :class:`TrainingConfig` fields (a checkpoint written by another
    version of the package) cannot be applied: the settings returned leave them out, and a
    ``UserWarning`` names them with their stored values (``warn_unknown`` False: not warned of
    here, for a caller that goes on to resume with :func:`train`, which warns of them itself: once,
    not twice). ``stacklevel``: where that warning points, as ``warnings.warn`` takes it
    (keyword-only; 2: the caller of this function).

    Raises:
        ValueError: the newest checkpoint's ``trainer_state.json`` is damaged, naming it: not JSON,
            no ``"step"``, its ``"training"`` missing or not a JSON object (a list, a string), or a
            stored setting that :class:`TrainingConfig` refuses (the message names the file and
            the setting).
    """
    found = _checkpoints(Path(output_dir) / CHECKPOINT_DIR)
    if not found or not (found[-1] / "trainer_state.json").is_file():  # missing: check_resume names it
        return None
    stored = _trainer_state(found[-1])["training"]  # a JSON object: _trainer_state refuses anything else
    unknown = _unknown_training_settings(found[-1], stored)
    if unknown and warn_unknown:  # dropped silently before: the run went on with the defaults of what it could not read
        warnings.warn(unknown, UserWarning, stacklevel=stacklevel)
    names = {f.name for f in dataclasses.fields(TrainingConfig)}
    try:
        return TrainingConfig(**{k: v for k, v in stored.items() if k in names})
    except (TypeError, ValueError) as err:  # "training.max_steps: ..." named no file
        path = found[-1] / "trainer_state.json"
        raise ValueError(f"resume: {str(path)!r} is damaged: its \"training\" holds a setting this version refuses "
                         f"({err}); {_fallback(found[-1])}, or {START_AFRESH}") from None


def _unknown_training_settings(checkpoint, stored: dict) -> Optional[str]:
    """The warning for the training settings of a checkpoint that this version of the package does
    not know (not :class:`TrainingConfig` fields: a ``trainer_state.json`` written by another
    version), which a resumed run cannot apply: ``"resume: '<checkpoint>/trainer_state.json' holds
    training settings this version of hf_neuroformer does not know (stored values): {name: value};
    the run continues without them"``, or None when every stored setting is a field.

    Args:
        checkpoint: the checkpoint folder (``output_dir/checkpoints/step-<n>``), named in the message.
        stored: its ``trainer_state.json``'s ``"training"`` mapping (setting name -> stored value).
    """
    names = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown = {k: v for k, v in stored.items() if k not in names}
    if not unknown:
        return None
    return (f"resume: {str(Path(checkpoint) / 'trainer_state.json')!r} holds training settings this version of "
            f"hf_neuroformer does not know (stored values): {unknown}; the run continues without them")


def _fallback(checkpoint: Path) -> str:
    """What to do about a damaged ``checkpoint``: resume from the one before it, if there is one."""
    older = [c.name for c in _checkpoints(checkpoint.parent) if c.name < checkpoint.name]
    return (f"move it out of {str(checkpoint.parent)!r} to resume from the one before ({older[-1]})" if older else
            "there is no older checkpoint to resume from")


def _trainer_state(checkpoint: Path) -> dict:
    """``checkpoint/trainer_state.json``, read.

    Raises:
        ValueError: the file is not a trainer state (cut short by a full disk or a copy, edited),
            naming it and the older checkpoint to fall back to; a bare ``JSONDecodeError``
            ("Expecting value: line 2 column 1") came out of ``neuroformer train --resume`` before.
            Also when its ``"training"`` (the run's training settings) is missing or not a JSON
            object (a list or a string: a bare ``AttributeError`` came out before), naming the key.
            (Its run record, which a resume carries on, is checked by :func:`check_resume`.)
    """
    path = Path(checkpoint) / "trainer_state.json"
    try:
        state = json.loads(path.read_text())
        int(state["step"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"resume: {str(path)!r} is damaged ({type(err).__name__}: {err}); {_fallback(Path(checkpoint))}, "
                         f"or {START_AFRESH}") from None
    settings = state.get("training")  # train writes it in every checkpoint; resuming reads it
    if not isinstance(settings, dict):
        got = "missing" if "training" not in state else f"a JSON {_json_kind(settings)} ({_short_repr(settings)})"
        raise ValueError(f"resume: {str(path)!r} is damaged: its \"training\" is {got}, expected a JSON object of "
                         f"the run's training settings (name -> value); {_fallback(Path(checkpoint))}, or {START_AFRESH}")
    return state


def _is_whole(value, least: int = 0) -> bool:
    """Whether ``value`` (read from JSON) is a whole number >= ``least`` (a JSON true is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value) -> bool:
    """Whether ``value`` (read from JSON) is a number, NaN and infinities included (a JSON true is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: The run record of a checkpoint's ``trainer_state.json`` that a resumed run carries on (the loop's
#: position, the log, the selection, the time): key -> (whether a checkpoint may lack it or hold null,
#: the test of a value, what was expected). ``training_stretches`` is checked by :func:`_check_run_record`.
_RUN_RECORD = {
    "epoch": (False, _is_whole, "a whole number >= 0"),
    "micro_batches_done_in_epoch": (False, _is_whole, "a whole number >= 0"),
    "best_step": (False, _is_whole, "a whole number >= 0"),
    "best_validation_loss": (True, _is_number, "a number or null"),
    "running_loss": (True, _is_number, "a number or null"),
    "train_time_s": (False, lambda v: _is_number(v) and v >= 0, "a number of seconds >= 0"),
    "first_nonfinite_step": (True, lambda v: _is_whole(v, 1), "a whole number >= 1 or null"),
    "n_train_windows_unused": (True, _is_whole, "a whole number >= 0"),
    "log": (False, lambda v: isinstance(v, list) and all(isinstance(e, dict) and _is_whole(e.get("step"), 1)
                                                         for e in v),
            "a JSON array of the training log's entries, each an object with a whole \"step\" >= 1"),
    "fingerprint": (False, lambda v: isinstance(v, dict), "a JSON object (the run's model config, data and launch)"),
}


def _check_run_record(state: dict, checkpoint: Path) -> None:
    """Refuse a checkpoint whose ``trainer_state.json`` (``state``, read) holds a run record that train
    did not write: a key of :data:`_RUN_RECORD` missing or of another kind, or ``training_stretches``
    (missing or null in a checkpoint written before they were kept) not a JSON array of objects with
    a whole ``from_step`` / ``to_step`` and a ``mixed_precision`` that tile steps 1 to the checkpoint's
    step in order. A resumed run read them with bare ``state[key]``: a damaged one came out as a
    ``KeyError`` / ``TypeError`` naming no file, the stretches only when the resumed run ended, after
    its last step (or after its next checkpoint's).

    Raises:
        ValueError: ``resume: '<checkpoint>/trainer_state.json' is damaged: its "<key>" ...``, what
            it holds and what was expected, and what to do: fix the file, resume from the older
            checkpoint (named) where there is one, or start afresh without resume.
    """
    path = checkpoint / "trainer_state.json"
    older = _fallback(checkpoint)
    todo = (f"fix the file, {older}," if older.startswith("move") else f"fix the file ({older}),") + \
        f" or {START_AFRESH}, without --resume (resume=False)"

    def refuse(key: str, value, expected: str, present: bool = True):
        got = f"a JSON {_json_kind(value)} ({_short_repr(value)})" if present else "missing"
        raise ValueError(f"resume: {str(path)!r} is damaged: its {key} is {got}, expected {expected}; {todo}")

    for key, (optional, valid, expected) in _RUN_RECORD.items():
        if key not in state:
            if not optional:
                refuse(f'"{key}"', None, expected, present=False)
        elif not ((optional and state[key] is None) or valid(state[key])):
            refuse(f'"{key}"', state[key], expected)
    stretches = state.get("training_stretches")
    if not stretches:  # a checkpoint written before they were kept: its steps ran with its own settings
        return
    if not isinstance(stretches, list):
        refuse('"training_stretches"', stretches, "a JSON array of the stretches of steps the run trained (objects)")
    step = int(state["step"])
    after = 0  # the last step of the stretches before
    for i, stretch in enumerate(stretches):
        key = f'"training_stretches"[{i}]'
        if not isinstance(stretch, dict):
            refuse(key, stretch, "a JSON object (from_step, to_step, mixed_precision, ...)")
        for name, expected in (("from_step", "a whole number >= 1"), ("to_step", "a whole number >= 1"),
                               ("mixed_precision", "a JSON string (no, bf16 or fp16)")):
            value = stretch.get(name)
            if not (isinstance(value, str) if name == "mixed_precision" else _is_whole(value, 1)):
                refuse(f'{key}["{name}"]', value, expected, present=name in stretch)
        if stretch["from_step"] != after + 1 or stretch["to_step"] < stretch["from_step"] or \
                (i == len(stretches) - 1 and stretch["to_step"] != step):
            spans = ", ".join(f"{r.get('from_step')}-{r.get('to_step')}" for r in stretches if isinstance(r, dict))
            raise ValueError(f"resume: {str(path)!r} is damaged: its \"training_stretches\" cover steps {spans}, "
                             f"expected stretches one after another from step 1 to the checkpoint's step {step}; "
                             f"{todo}")
        after = stretch["to_step"]


def _json_kind(value) -> str:
    """The JSON name of the kind of ``value`` as ``json.loads`` returns it (``"array"`` for a list)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {list: "array", str: "string", dict: "object"}.get(type(value), type(value).__name__)


def _short_repr(value, limit: int = 60) -> str:
    """``json.dumps(value)``, cut to ``limit`` characters with "..." (a message quotes it)."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def model_is_from_checkpoint(output_dir, checkpoint) -> bool:
    """Whether the model in ``output_dir`` is what its run wrote at the end of ``checkpoint``:
    ``metrics.json``'s ``total_steps`` is the checkpoint's step and every tensor of
    ``model.safetensors`` equals the checkpoint's selected weights (``best_model.safetensors``; the
    last weights, ``model.safetensors``, for a run without validation split).

    False for the model of an earlier, shorter run whose extension (``--resume --max-steps``) was
    interrupted after its last checkpoint and before its model was written (the step-300 model
    beside a step-600 checkpoint), for the model that an ``--overwrite`` run was to replace, and
    for a folder missing ``model.safetensors`` or ``metrics.json``: a resumed run then has no step
    left, but still scores and writes the checkpoint's model instead of saying "nothing to do".
    """
    from safetensors.torch import load_file

    out, checkpoint = Path(output_dir), Path(checkpoint)
    try:
        step = int(json.loads((checkpoint / "trainer_state.json").read_text())["step"])
        if json.loads((out / "metrics.json").read_text()).get("total_steps") != step:
            return False
        saved = load_file(str(out / "model.safetensors"))
        ref_path = checkpoint / "best_model.safetensors"
        ref = load_file(str(ref_path if ref_path.is_file() else checkpoint / "model.safetensors"))
    except (OSError, ValueError, KeyError, TypeError):  # missing or unreadable files: not that model
        return False
    ref = {k.removeprefix("_orig_mod."): v for k, v in ref.items()}  # a compiled run's selection, as written before 2026-12
    # NaN equals NaN here: a diverged run's model is still its checkpoint's (torch.equal said it was not, so
    # resuming it at its own max_steps called it "a run stopped before writing its model" and rewrote it)
    return all(k in ref and ref[k].shape == v.shape and _same_values(ref[k].to(v.dtype), v) for k, v in saved.items())


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors of one shape and dtype hold the same values, NaN at the same places counted equal."""
    return torch.equal(a, b) or (a.is_floating_point() and torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True))


def check_resume(output_dir, training: "TrainingConfig", config: Optional[NeuroformerConfig] = None,
                 config_fields: Optional[Sequence[str]] = None) -> Optional[str]:
    """Check before anything is loaded or written that ``train(..., resume=True)`` can continue
    the run in ``output_dir`` with ``training.max_steps``.

    A run that finished (its model is in ``output_dir``) is extended by resuming it with a larger
    ``max_steps``: the model files are replaced when the longer run ends (see
    :func:`save_atomically`). Resumed with a ``max_steps`` equal to its newest checkpoint's step
    it has nothing to do; a model ``config`` given for it (``train``'s ``config``; ``neuroformer
    train --config`` passes the fields its file sets as ``config_fields``, None: every field) is
    first compared with the checkpoint's, as a resume that trains on compares it (the fields the
    data sets, ``vocab_size`` and ``modalities``, and the data itself are compared only once the
    data is read, by a resume that trains on).

    Returns:
        None when training is to go on, or the message saying there is nothing to do (the
        folder holds the finished model of a run whose newest checkpoint is at ``max_steps``).

    Raises:
        FileNotFoundError: if ``output_dir`` holds no checkpoint (naming the model files when it
            holds a finished model: it cannot be extended, only trained afresh), or its newest
            checkpoint lacks one of :data:`CHECKPOINT_FILES` (naming the older one to fall back to).
        ValueError: if ``training.max_steps`` is below the newest checkpoint's step, or its
            ``trainer_state.json`` is damaged (naming the older checkpoint to fall back to; a value of
            its run record, :func:`_check_run_record`, also naming the key); with
            nothing to do, a ``config`` whose fields differ from the checkpoint's (naming the first).
    """
    out = check_output_dir(output_dir, overwrite=True)  # completes an interrupted save
    found = model_files_in(out)
    ckpt_root = out / CHECKPOINT_DIR
    if found and not _checkpoints(ckpt_root):
        # an --overwrite run killed while deleting the finished run's checkpoints leaves them as .tmp-step-*,
        # which "deleted, or the run had no --save-every" did not name
        partial = _incomplete_checkpoints(ckpt_root)
        left = f"; {partial}" if partial else ""
        raise FileNotFoundError(
            f"resume: {str(out)!r} holds a finished model ({', '.join(found)}) but no checkpoint in "
            f"{str(ckpt_root)!r} to continue from (deleted, or the run had no training.save_every / --save-every){left}; "
            "a model cannot be extended without its optimizer state: train afresh with --save-every N, into "
            "another --output-dir or with --overwrite (which replaces this model)"
        )
    last = latest_checkpoint(out, training)
    lacking = [name for name, patterns in CHECKPOINT_FILES.items()
               if not any(any(last.glob(pattern)) for pattern in patterns)]
    if lacking:
        # a raw "[Errno 2] No such file or directory: '.../optimizer.bin'" came only after the data was loaded
        raise FileNotFoundError(
            f"resume: the newest checkpoint {str(last)!r} lacks {', '.join(lacking)} (damaged, or copied in part); "
            f"{_fallback(last)}, or {START_AFRESH}")
    state = _trainer_state(last)
    _check_run_record(state, last)  # what a resume carries on: a damaged value came out as a bare KeyError / TypeError
    step = int(state["step"])
    if training.max_steps < step:
        raise ValueError(
            f"--max-steps (training.max_steps): {training.max_steps}, but the newest checkpoint {str(last)!r} is at "
            f"step {step}: a resumed run cannot end before its checkpoint; resume with --max-steps {step} or more "
            f"(to end at the checkpoint, or extend the run), or {START_AFRESH}"
        )
    if found and training.max_steps == step and model_is_from_checkpoint(out, last):
        if config is not None and isinstance(state.get("fingerprint"), dict):
            # said "nothing to do" for a --config of another hidden_size, which a resume that trains on refuses
            now, stored = _config_fingerprint(config), state["fingerprint"].get("config") or {}
            if _drops_output_attentions(config, training):  # as train stores it: a resume that trains on drops it too
                now["output_attentions"] = False
            if config_fields is not None:
                now, stored = ({k: d.get(k) for k in config_fields} for d in (now, stored))
            _check_resume_config(last, {"config": stored}, {"config": now})
        return (f"resume: nothing to do: the run in {str(out)!r} finished at step {step} (checkpoint {last.name}) and "
                f"--max-steps (training.max_steps) is {step}; its model is left as it is. To train on, resume with "
                "a larger --max-steps")
    return None


def train(
    recording,
    output_dir,
    config: Optional[NeuroformerConfig] = None,
    training: Optional[TrainingConfig] = None,
    overwrite: bool = False,
    progress: bool = True,
    resume: bool = False,
    on_step_end: Optional[Callable[[int, float], None]] = None,
    on_train_end: Optional[Callable[[torch.nn.Module], None]] = None,
    initial_state: Optional[Dict[str, torch.Tensor]] = None,
    on_train_start: Optional[Callable[[torch.nn.Module], None]] = None,
    ci_block_s: Optional[float] = None,
    ci_block_s_option: str = "ci_block_s=",
    learning_rate_option: str = "learning_rate",
    write_figures: bool = True,
    *,
    stacklevel: int = 2,
) -> Dict[str, object]:
    """Pretrain a Neuroformer on ``recording`` and write it with its test metrics.

    Runs unchanged on one CPU, under ``torchrun`` and under ``accelerate launch`` (DDP, FSDP,
    several machines): the Accelerate-prepared data loader gives each process its share of
    every batch; validation is split across processes and summed, so all processes select the
    same checkpoint; test scoring, generation and saving happen on the main process only.

    Args:
        recording: the spikes (one session, a :class:`SpikeRecording`), or the path of a
            directory written by :func:`~hf_neuroformer.windows.prepare_windows` (``neuroformer
            prepare``). From a prepared directory the windows are streamed from its Parquet
            shards (``datasets`` ``IterableDataset``, shuffled in a buffer of
            ``training.shuffle_buffer_size`` windows, divided between processes with
            ``split_dataset_by_node``), so the recording is never held in memory (peak memory
            still grows a little with its length, mostly while scoring the larger validation and
            test splits; see the streaming-memory benchmark). The window settings and the tokenizer are the directory's (a ``config`` may change the
            network, not the windows); the test metrics are the token NLLs and the token
            baselines, without the generation-based ones (they need the recording: run
            ``neuroformer generate`` / ``evaluate``). With several processes an epoch ends when
            the first process runs out of windows; the windows left on the others are counted
            (``n_train_windows_unused``).
        output_dir: gets ``config.json``, ``model.safetensors``, tokenizer files,
            ``metrics.json``, ``splits.json``, ``training_config.json``, ``training_log.json``
            (an entry every ``training.eval_every`` steps and at the last step: ``step``,
            ``epoch``, ``train_loss``, the running mean of the step losses that the progress bar
            shows (exponential, weight 0.05 per step, bias-corrected: :func:`running_loss`), nats, ``learning_rate``, the AdamW rate
            that step updated with (linear warm-up over ``training.warmup_ratio`` of the steps,
            then cosine decay to 0: transformers' ``get_cosine_schedule_with_warmup``; step ``k``
            takes the schedule's value after ``k - 1`` updates), and with a validation split
            ``validation/loss``, ``validation/id_nll``, ``validation/dt_nll``), the figures
            ``training_curves.png`` (:func:`~hf_neuroformer.plotting.plot_training_curves`; the
            training loss alone without a validation split) and ``test_generation.png`` (when
            the test split was generated: not with ``training.generate_test`` false) (main process only), and with ``training.save_every``
            the resumable checkpoints in ``checkpoints/``.
        config: model and window settings (default :class:`NeuroformerConfig`).
        training: optimisation settings (default :class:`TrainingConfig`).
        overwrite: replace a model (and earlier checkpoints) already in ``output_dir``. The
            earlier checkpoints are deleted before training starts; the model (weights, config,
            tokenizer files, ``metrics.json``, figures, tables) is left whole and untouched until
            the new one is saved over it in one transaction (:func:`save_atomically`), so a run
            that stops before then keeps it. Files of the folder that are no model output are kept.
            When training starts, every run (with ``overwrite``, ``resume`` or neither) writes the
            record :data:`~hf_neuroformer.run_record.UNFINISHED_TRAIN` into ``output_dir`` (main
            process; :func:`~hf_neuroformer.run_record.write_unfinished_run`: its start, pid and
            host, the model files already there, the checkpoints that are not its own); the save of
            the model removes it in the same transaction. A run stopped by an exception (Ctrl-C
            included) removes it when it wrote no checkpoint, and keeps it beside its checkpoints
            otherwise (they stay resumable; ``resume`` continues the run and keeps counting them as
            the run's); a run killed outright leaves it. While it is there,
            :func:`~hf_neuroformer.generation.load_pretrained` (the commands' ``--model``) and
            :func:`~hf_neuroformer.finetuning.load_decoder` warn that the model loaded is the
            earlier one and name that run's checkpoints.
        progress: show the package's progress bars (on the main process): one over the steps,
            one over the batches of each validation pass and of the final validation and test
            passes (``evaluating``, below the step bar, not left on a terminal), and generation's
            over the test windows; ``TQDM_DISABLE=1`` turns them off.
        resume: continue from the newest checkpoint in ``output_dir/checkpoints``: model,
            optimizer, scheduler, gradient scaler and RNG states (Accelerate ``load_state``),
            the position in the epoch's shuffled order, the training log and the
            validation-selected weights. The run then ends as the uninterrupted run would have.
            A finished run (its model in ``output_dir``) is extended by resuming it with a larger
            ``max_steps`` (``max_epochs``): the learning rate then follows the cosine schedule of
            a run of the new length from the checkpoint's step, and the model files are replaced
            when the longer run ends (the old model stays, whole, until then; see
            :func:`save_atomically`). Resumed at its own ``max_steps`` (no step left) it has
            nothing to do: it says so, leaves the model as it is and returns its ``metrics.json``
            (``on_train_end`` is not called). See :func:`check_resume`. Training settings the
            checkpoint stores that this version of the package does not know (a checkpoint of
            another version) cannot be applied: a ``UserWarning`` at ``stacklevel`` names them
            with their stored values, and the run goes on without them.
        on_step_end: called on every process after each optimisation step with the step
            number and the step's training loss (the same on every process).
        on_train_end: called on every process with the final (selected, unwrapped) model
            before it is scored and saved.
        initial_state: parameter name -> tensor, the starting values of the parameters of the
            freshly initialised model with the same name and shape (the others keep their
            initialisation; a resumed run starts from its checkpoint instead). The ablation
            gives each variant the previous variant's starting weights, so that adding an input
            changes only the weights of that input's modules (without it the modality modules
            drew from the seeded random stream first and 22 of 55 shared tensors started
            elsewhere). ``metrics.json`` records how many were taken (``n_initial_tensors_given``).
        on_train_start: called on every process with the initialised model (after
            ``initial_state``) before the first step of a fresh run (not when resuming).
        ci_block_s: length (s) of the blocks of consecutive test windows that the 95 %
            block-bootstrap intervals of the test NLLs resample in a time split (None: the default,
            10 s; a trial split's blocks are its trials, and a length given there, 10 included,
            is warned to have no effect); recorded as ``test/ci95_block_s``. With fewer
            than 5 blocks (a short test split) the intervals are null and their reason names a
            shorter length that gives 5 (:func:`split_nll_intervals`).
        ci_block_s_option: how that reason names the setting (``"ci_block_s="``, the default;
            ``neuroformer train`` passes ``"--ci-block-s"``).
        learning_rate_option: how the warnings (and ``test/generation``) of a diverged run name
            the learning rate to lower (``"learning_rate"``, the default; ``neuroformer train``
            names the ``training.learning_rate`` field of its ``--config`` file). A resumed run
            cannot take another rate (:data:`STATE_TRAINING_FIELDS`), so its advice also says to
            start afresh (``--overwrite``, ``overwrite=True``, or another output directory).
        write_figures: draw and write ``training_curves.png`` and ``test_generation.png``
            (default). False writes neither (and, as always, removes those an earlier run left in
            ``output_dir``): drawing and saving them with matplotlib took about half of train()'s
            time in a profile of a short CPU run (8 steps of a tiny model on 150 s of A2929),
            wasted in sweeps and tests that read only the metrics. The metrics, the generation and every other file are
            the same either way.
        stacklevel: where train's own warnings point, as ``warnings.warn`` takes it (keyword-only
            int, default 2: the line that calls ``train``); a wrapper that calls ``train``
            passes its own level + 1 so the warnings name its caller's line (as
            :func:`~hf_neuroformer.ablation.run_ablation` does). Warnings from inside the libraries
            train calls (PyTorch, transformers, Accelerate) keep their own levels.

    Returns:
        The metrics dict also written to ``metrics.json`` (keys ``test/...``, ``validation/...``);
        ``{}`` on processes other than the main one. ``validation/...`` are the kept model's
        figures on the whole validation split: in a single process, those its step's validation
        logged (the same pass, so the same floats); after a resume that kept an earlier run's
        step, with several processes, or with ``on_train_end``, the kept model scored again.

    Raises:
        TypeError: ``recording`` neither a :class:`SpikeRecording` nor a path (str or
            ``os.PathLike``), or ``output_dir`` not a path.
        ValueError: ``recording`` the path of a file (a recording's file: load it with
            :func:`hf_neuroformer.io.load_recording` and pass the recording).
        OutputDirLockedError: (a ``FileExistsError``) another run holds ``output_dir``'s lock
            :data:`RUN_LOCK` (named with its pid and host), checked before anything is read; the
            main process holds the lock for the run (:func:`output_dir_lock`).
        FileExistsError: if ``output_dir`` holds a model, or checkpoints while ``resume`` is
            False, and ``overwrite`` is False (checked before any training); with ``overwrite``,
            if ``output_dir/checkpoints`` holds anything but checkpoints (:func:`check_checkpoint_folder`);
            ``output_dir/checkpoints`` a file while ``save_every`` or ``overwrite`` is set
            (:func:`check_checkpoints_not_a_file`).
        FileNotFoundError: if ``resume`` and ``output_dir`` holds no checkpoint (also when it
            holds a finished model whose checkpoints were deleted: named, with what to do).
        ValueError: if ``resume`` and ``max_steps`` (or ``max_epochs``) ends before the newest
            checkpoint's step (before anything is loaded or written).
        ValueError: if ``batch_size`` is not a multiple of ``gradient_accumulation_steps`` times
            the number of processes, or leaves fewer than 2 windows per micro-batch with a
            contrastive loss (InfoNCE needs two windows to contrast), if a checkpoint was written with another model config or
            launch shape or on other data (other spikes in a split, other windows or shards), or
            with another ``learning_rate`` / ``weight_decay`` (the restored optimizer and
            scheduler keep the checkpoint's), or, from a checkpoint written inside an epoch, with
            another ``seed`` (streamed: or ``shuffle_buffer_size``), which draw the epoch's window
            order (other training settings that differ are warned about and used), or
            for fp16 on a CPU (Accelerate applies neither autocast nor loss scaling there, so the
            run would silently be float32; use bf16).
        ValueError: ``resume`` from a checkpoint one of whose files cannot be read (cut short, damaged),
            naming it and the older one to fall back to (:func:`_load_checkpoint`).
        ValueError: ``overwrite``, ``progress``, ``resume`` or ``write_figures`` not a ``bool`` (the
            text ``"False"`` is truthy; :func:`~hf_neuroformer.configuration_neuroformer.checked_bool`,
            before anything is read or written).
        ValueError: ``resume`` and ``overwrite`` both True; a train split without windows, or
            (streamed from a prepared directory) with fewer windows than processes;
            ``ci_block_s`` not a finite number > 0 (before anything is read or written);
            ``config.modalities`` with a prepared directory (it carries no modality inputs).
        RecordingValidationError: if the recording has no spikes.
        FileNotFoundError / ValueError: a path that is not a prepared directory, or a ``config``
            whose window settings differ from the prepared directory's, or a prepared directory whose
            ``vocab.json`` does not start with the vocabulary its windows were tokenized with
            (``manifest.json``'s ``vocabulary``; :class:`~hf_neuroformer.windows.VocabularyMismatchError`
            naming the first differing id and both tokens, or both lengths when it is shorter; one
            grown with ``tokenizer.add_units`` after prepare is accepted; a directory prepared before
            the record is trained on with a warning that it goes unchecked).
        RuntimeError: a shard of the prepared directory was replaced or deleted during the run
            (e.g. ``neuroformer prepare --overwrite`` into it), found at the next step, validation
            or final save.

    Warns:
        UserWarning: a split whose windows hold no spike, one warning per split, as ``prepare``
            gives it (:func:`~hf_neuroformer.windows.warn_splits_without_spikes`; its losses are NaN;
            for validation, the last step is kept, ``checkpoint_selection`` "last step (validation
            loss never finite)"); a validation loss that is NaN at every evaluation though the split holds
            spikes (training diverged; the last step is kept the same way); no validation windows
            (the last step is kept); test losses that are NaN though the test split holds spikes
            (training diverged: the test split is not generated, ``test/generation`` says why, and
            the model is still saved); a training loss that was NaN or infinite from some step on
            (training diverged) when no other warning says so: without a validation split, or
            with the validation split choosing a step before it (the step is also kept in the
            checkpoints, so a resumed run says it too).
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, GradientAccumulationPlugin, TorchDynamoPlugin, set_seed
    from safetensors.torch import load_file, save_file
    from .progress import progress_bar as tqdm, transformers_progress_bars
    from transformers import get_cosine_schedule_with_warmup

    # run_stack: the record of this unfinished run (_unfinished_train_record), closed before the lock is released
    with output_dir_lock(output_dir, "train"), contextlib.ExitStack() as run_stack:
        # metrics.json's total_time_s: from here (it began after the checks and the Accelerator's setup, though the
        # README called it the time of the whole call) to the figure taken as metrics.json is written
        t_start = time.time()
        streamed = not isinstance(recording, SpikeRecording)
        if streamed and not isinstance(recording, (str, os.PathLike)):  # a dict, an array: a TypeError from inside Path
            raise TypeError(f"recording: expected a SpikeRecording (hf_neuroformer.io.load_recording(path)) or the path "
                            f"(str or os.PathLike) of a directory written by 'neuroformer prepare', got "
                            f"{type(recording).__name__}")
        if not isinstance(output_dir, (str, os.PathLike)):
            raise TypeError(f"output_dir: expected the path (str or os.PathLike) of the folder to write the model to, got "
                            f"{type(output_dir).__name__}")
        # write_figures="False" (a string) was truthy and drew the figures; resume="no" resumed: each a real bool,
        # checked before the recording is read or the output folder touched
        for name, flag in (("overwrite", overwrite), ("progress", progress), ("resume", resume),
                           ("write_figures", write_figures)):
            checked_bool(name, flag, owner="train", keyword=True)
        given_config = config  # compared with a resumed checkpoint's even when there is nothing to do
        # a diverged run's advice: a resumed run cannot take another rate (STATE_TRAINING_FIELDS: its
        # checkpoint's optimizer and schedule keep theirs), so "lower it" alone led to a refusal
        lower_rate = f"lower {learning_rate_option}" + (
            f" and {START_AFRESH} (a resumed run keeps its checkpoint's learning rate)" if resume else "")
        if config is not None:
            config = copy.deepcopy(config)
        elif not streamed:  # a prepared directory brings its own config
            config = NeuroformerConfig()
        training = training or TrainingConfig()
        ci_block_s, block_s_asked = resolve_block_s(ci_block_s)  # before the output folder is touched
        launched = _launcher_precision(training)
        # before anything is read or prepared; named by what asked for it (the launcher where the config said "no")
        check_precision_device(launched.mixed_precision, "training.mixed_precision" if launched is training
                               else "ACCELERATE_MIXED_PRECISION (accelerate launch --mixed_precision)")
        training = launched
        output_dir = Path(output_dir)
        ckpt_root = output_dir / CHECKPOINT_DIR
        if resume and overwrite:
            raise ValueError("resume and overwrite: give one of them (overwrite starts afresh, resume continues)")
        if streamed and output_dir.is_dir() and Path(recording).is_dir() and os.path.samefile(output_dir, recording):
            # refused as "already holds a model (config.json, vocab.json, ...)" (the prepared files), and
            # with overwrite the model's config, tokenizer and splits replaced those of the data folder
            raise ValueError(f"output_dir: {str(output_dir)!r} is the prepared directory this run reads ({PREPARED_FIELD}); "
                             "overwrite replaces old outputs, never the data: choose another output directory")
        if resume:
            done = check_resume(output_dir, training, given_config)
            if done:
                if block_s_asked:  # asked for, but nothing is scored
                    unapplied_block_s_warning(output_dir, ci_block_s, ci_block_s_option,
                                              stacklevel=stacklevel + 1)
                return _nothing_to_do(output_dir, done)
            # a finished run, extended: its model files are replaced when this run ends. A model that
            # is not the newest checkpoint's result (an extension killed after its last checkpoint)
            # is not finished: it is replaced by the checkpoint's, even with no step left
            finished = bool(model_files_in(output_dir)) and model_is_from_checkpoint(output_dir, latest_checkpoint(output_dir))
        else:
            check_output_dir(output_dir, overwrite)
            if overwrite:  # the checkpoints folder is deleted below
                check_checkpoint_folder(output_dir)
        check_checkpoints_not_a_file(output_dir, training.save_every, overwrite)
        if not resume and not overwrite and _checkpoints(ckpt_root):
            raise FileExistsError(
                f"output_dir: {str(output_dir)!r} holds checkpoints of an earlier run ({_checkpoints(ckpt_root)[-1].name}); "
                "pass --resume (resume=True) to continue it, or --overwrite (overwrite=True) to start afresh"
            )
        if streamed:
            prepared = Path(recording)
            config, tokenizer, plan, manifest, prepared_rows = _prepared_setup(prepared, config,
                                                                               stacklevel + 1)
        else:
            check_not_empty(recording)
        _check_attn_implementation(training.attn_implementation)
        end_with_launcher()  # a worker of a launcher killed outright trained on with nobody waiting for it
        set_seed(training.seed)
        from accelerate.state import AcceleratorState, GradientState

        if AcceleratorState._shared_state and not AcceleratorState().distributed_type.name.startswith("MULTI"):
            # a second train() in one process may ask for another precision; the single-process
            # state can be rebuilt (a distributed one belongs to the launcher and is kept)
            AcceleratorState._reset_state()
            GradientState._reset_state()
        ga = training.gradient_accumulation_steps
        accelerator = Accelerator(
            mixed_precision=training.mixed_precision,
            # groups of micro-batches are formed below, so the last group of an epoch may be short;
            # the sync point is set per group (accelerator.step), not at the end of the data loader
            gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=ga, sync_with_dataloader=False),
            # the scheduler is stepped once per optimisation step here (a prepared one would step
            # num_processes times per step, as if the schedule were counted in single-process batches)
            step_scheduler_with_optimizer=False,
            dynamo_plugin=TorchDynamoPlugin(backend=training.torch_compile_backend) if training.torch_compile else None,
            # no windows made up to fill the last micro-batches of an epoch: with even_batches (Accelerate's
            # default) the processes' last micro-batches were topped up with windows from the start of the
            # epoch, so the last step of every epoch trained on those windows twice (14 of 16 windows of a
            # 34-window split) and two processes no longer made the update of one; a process left without a
            # micro-batch takes part in the step with a zero loss instead (see the loop)
            dataloader_config=DataLoaderConfiguration(even_batches=False),
        )
        if training.mixed_precision == "fp16" and accelerator.device.type == "cpu":  # a CPU check_precision_device missed
            raise ValueError(f"training.mixed_precision: {_FP16_ON_CPU}")
        world, main = accelerator.num_processes, accelerator.is_main_process
        if training.batch_size % (ga * world):
            raise ValueError(
                f"training.batch_size: expected a multiple of gradient_accumulation_steps * processes = {ga} * {world}, got "
                f"{training.batch_size} (batch_size counts the windows of one optimisation step over all processes)"
            )
        micro_batch = training.batch_size // (ga * world)
        if (world == 1 and "ACCELERATE_MIXED_PRECISION" in os.environ and "MASTER_PORT" in os.environ
                and "WORLD_SIZE" not in os.environ and not _master_port_inherited()):
            # accelerate launch sets MASTER_ADDR / MASTER_PORT only for --num_processes > 1, yet with --cpu it
            # starts one process (no WORLD_SIZE): the run trained alone and said nothing
            warnings.warn("accelerate launch was asked for several processes (it set MASTER_PORT) but started 1 process: "
                          "'accelerate launch --cpu --num_processes N' runs a single process; for N CPU processes use "
                          "'ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node N -m hf_neuroformer.cli train ...'. "
                          "This run trains on 1 process", UserWarning, stacklevel=stacklevel)
        if main and world > 1:  # the result alone did not say that several processes trained
            print(f"[neuroformer] training on {world} processes ({accelerator.state.backend or accelerator.device.type}): "
                  f"{micro_batch} windows per process per micro-batch"
                  + (f" x {ga} accumulated" if ga > 1 else "") + f", {training.batch_size} windows per step")
        # the contrastive InfoNCE gathers the processes' windows (config.contrastive_gather_across_processes)
        gathered = config is None or config.contrastive_gather_across_processes
        contrasted_together = micro_batch * world if gathered else micro_batch
        if config is not None and config.contrastive_modality_names() and contrasted_together < 2:
            # InfoNCE contrasts the windows of one micro-batch (of every process together, when gathered): with one
            # window it was 0 on every step, so a run asked for the contrastive loss trained without it and said nothing
            raise ValueError(
                f"training.batch_size: {training.batch_size} windows per step over gradient_accumulation_steps * processes "
                f"= {ga} * {world} leaves {micro_batch} window per micro-batch"
                + ("" if gathered or world == 1 else " and process (contrastive_gather_across_processes is false)")
                + f"; contrastive_loss_weight {config.contrastive_loss_weight} contrasts the windows of a micro-batch and "
                "needs at least 2 (raise batch_size or lower gradient_accumulation_steps)")
        if main and world > 1 and not gathered and config.contrastive_modality_names():
            # the term of such a run is another than that of one process with the same batch_size: say so
            warnings.warn(
                f"contrastive_loss_weight {config.contrastive_loss_weight}: InfoNCE contrasts each window with the other "
                f"windows of its own micro-batch on its own process (contrastive_gather_across_processes is false: "
                f"embeddings are not gathered across the {world} processes), so a window has at most {micro_batch - 1} "
                f"negatives ({training.batch_size // ga - 1} with the gather, or on 1 process with "
                f"gradient_accumulation_steps {ga}); the contrastive term is that of 1 process with {ga * world} accumulated "
                f"micro-batches of {micro_batch}, not of 1 process with batch_size "
                f"{training.batch_size}", UserWarning, stacklevel=stacklevel)

        if streamed:
            from datasets.distributed import split_dataset_by_node

            if config.modalities:
                raise ValueError("config.modalities: training from a prepared directory does not carry modality inputs "
                                 "yet; train on the recording itself (neuroformer train --data RECORDING)")
            dsets = {s: load_prepared(prepared, s, streaming=True, verify=False, field=PREPARED_FIELD) for s in SPLITS}
            shards_unchanged = _shard_watch(prepared, manifest)
            n_windows = dict(prepared_rows)  # the rows in the shards, checked against the manifest
            mod_trunc, mod_empty, ev_unread = {}, {}, {}
            trunc = {s: int(manifest["splits"][s]["n_truncated_spikes"]) for s in SPLITS}
            ptrunc = {s: int(manifest["splits"][s]["n_truncated_past_spikes"]) for s in SPLITS}
            n_spikes = {s: int(manifest["splits"][s]["n_spikes"]) for s in SPLITS}
            # the windows they were cut from: a manifest written before 'neuroformer prepare' counted them has none
            # (None: neither printed nor in metrics.json, rather than a 0 no one counted)
            twin, ptwin = ({s: int(manifest["splits"][s][key]) for s in SPLITS}
                           if all(key in manifest["splits"][s] for s in SPLITS) else None
                           for key in ("n_truncated_windows", "n_truncated_past_windows"))
            # written by 'neuroformer prepare' since it counts them; an older manifest has none
            outside = ({s: {k: manifest["splits"][s][k] for k in ("n_spikes_outside_windows", "seconds_outside_windows")}
                        for s in SPLITS}
                       if all("n_spikes_outside_windows" in manifest["splits"][s] for s in SPLITS) else None)
        else:
            tokenizer = NeuroformerTokenizer.from_config(config)
            tokenizer.add_units(recording)
            config.vocab_size = len(tokenizer)
            # the warnings of the split plan and windows point at train's caller (stacklevel + 1)
            plan = plan_splits(recording, config, stacklevel=stacklevel + 1)
            if config.modalities:  # statistics and classes of the training split, saved with the model
                fit_modalities(recording, config, plan, overwrite=True, stacklevel=stacklevel + 1)
            dsets, plan = build_window_datasets(recording, tokenizer, config, plan,
                                                stacklevel=stacklevel + 1)
            n_windows = {s: len(dsets[s]) for s in SPLITS}
            # the count columns read through Arrow (column_values): dsets[s][name] built a Python list row by row,
            # about 0.1 s per column and split of a 180 s recording, six times per run
            mod_trunc = {m["name"]: {s: int(column_values(dsets[s], f"mod_{m['name']}_n_truncated", np.int64).sum())
                                     for s in SPLITS}
                         for m in config.modalities}
            # windows that read no value of a modality (only its learned null token): a series sampled far
            # more slowly than the window, NaN runs, a gap, or timestamps on another clock show up here
            mod_empty = {m["name"]: {s: windows_without_values(dsets[s], m) for s in SPLITS} for m in config.modalities}
            # events no window of any split reads (in the gaps between splits): they were dropped without a count
            starts_by_split = {s: column_values(dsets[s], "window_start") for s in SPLITS}
            ev_unread = events_in_no_window(recording, config, [(starts_by_split[s], column_values(dsets[s], "past_clip_start"))
                                                                for s in SPLITS])
            cut = {s: column_values(dsets[s], "n_truncated", np.int64) for s in SPLITS}
            past_cut = {s: column_values(dsets[s], "n_past_truncated", np.int64) for s in SPLITS}
            trunc = {s: int(cut[s].sum()) for s in SPLITS}
            ptrunc = {s: int(past_cut[s].sum()) for s in SPLITS}
            n_spikes = {s: int(column_values(dsets[s], "n_spikes", np.int64).sum()) for s in SPLITS}
            # the windows the spikes were cut from (a few bursting windows, or many a little over the budget)
            twin = {s: int(np.count_nonzero(cut[s] > 0)) for s in SPLITS}
            ptwin = {s: int(np.count_nonzero(past_cut[s] > 0)) for s in SPLITS}
            outside = spikes_outside_windows(recording, plan, config, starts_by_split)
        collator = NeuroformerCollator(config.pad_token_id, config.bos_token_id, config.eos_token_id, config.modalities)
        if main:
            for name, by_split in mod_trunc.items():
                if any(by_split.values()):
                    mod = config.modality(name)
                    print(f"[neuroformer] modality {name!r}: {truncated_tokens_text(mod)} dropped (earliest first) per split {by_split}")
            for name, by_split in mod_empty.items():
                if any(by_split.values()):
                    w0, w1 = config.modality(name)["window"]
                    print(f"[neuroformer] modality {name!r}: windows without any value in their modality window "
                          f"[{w0:g}, {w1:g}) s (they read only the learned null token) per split {by_split}, of "
                          f"{n_windows}")
            for name, k in ev_unread.items():
                if k:
                    mod = config.modality(name)
                    print(f"[neuroformer] modality {name!r}: {k} of the {len(recording.events[mod['source'][7:]])} events "
                          f"of {mod['source']!r} lie in no window's modality window of any split (the gaps between "
                          "splits, or segments too short for a window): no window reads them")
            for s in SPLITS:
                if trunc[s]:
                    where = "" if twin is None else f" in {twin[s]} of {count_noun(n_windows[s], 'window')}"
                    print(f"[neuroformer] {s}: {trunc[s]} of {n_spikes[s]} current-window spikes truncated{where} "
                          f"(windows longer than max_window_length={config.max_window_length} tokens)")
            no_past = config.max_past_length == 1  # the past window holds only its BOS: no past spike is ever read
            if no_past and any(ptrunc.values()):
                # by design (ablate's state-only variant): not a budget to raise, so neither the per-split
                # counts nor the inspect hint below, which sent the user to raise max_past_length
                print(no_past_note(sum(ptrunc.values())))
            for s in SPLITS:  # the past windows' cut spikes were only summed up in metrics.json at the end
                if ptrunc[s] and not no_past:
                    where = "" if ptwin is None else f" of {ptwin[s]} of {count_noun(n_windows[s], 'window')}"
                    print(f"[neuroformer] {s}: {ptrunc[s]} past-window spikes left out{where} (past windows longer than "
                          f"max_past_length={config.max_past_length} tokens; counted once per window that reads them)")
            if any(trunc.values()) or (any(ptrunc.values()) and not no_past):
                print("[neuroformer] 'neuroformer inspect --data ...' gives the spikes per window and a max_window_length "
                      "(max_past_length) that holds 99 % of the training windows (past windows) whole")
            # a stray spike long after the session (a clock glitch) stretches the recording: a split cut from the
            # empty stretch scored NaN, and an empty validation split was reported as "no validation split". The
            # warning 'neuroformer prepare' gives (stacklevel + 1: train's caller)
            warn_splits_without_spikes(n_windows, n_spikes, stacklevel=stacklevel + 1)

        if _drops_output_attentions(config, training):
            # transformers refuses to save output_attentions=True with sdpa: the run failed at its final save
            if is_main_rank():  # the same config on every rank: one warning, not one per process
                warnings.warn(f"config.output_attentions=True is dropped: the model is saved with attn_implementation="
                              f"{training.attn_implementation!r}, which transformers refuses to save with "
                              "output_attentions=True (training never reads it); load the model with "
                              "from_pretrained(path, output_attentions=True)",
                              UserWarning, stacklevel=stacklevel)
            config.output_attentions = False
        config._attn_implementation = training.attn_implementation
        model = NeuroformerForPreTraining(config)
        n_initial = None
        if initial_state is not None and not resume:
            own = model.state_dict()
            given = {k: v for k, v in initial_state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
            model.load_state_dict(given, strict=False)
            n_initial = len(given)
        if on_train_start is not None and not resume:
            on_train_start(model)
        if training.activation_checkpointing:
            model.activation_checkpointing_enable()
        train_ds = dsets["train"]
        has_val = n_windows["validation"] > 0
        has_test = n_windows["test"] > 0
        if has_test and training.generate_test and not streamed:
            # the test generation after training is refused by generate_spikes when its batch cannot fit in
            # memory: checked here, before any step, so that a run is not lost to it at the end (the tiling's
            # warning of overlapping trials is given where the split is generated)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gen_starts, gen_clips = generation_windows(plan, "test", config)
            # charged the longest past of the test windows (teacher-forced, from this recording), as generate_spikes
            # charges it: full pasts refused a model with a long max_past_length on a recording of short pasts
            check_generation_batch_memory(config, training.generation_batch_size, len(gen_starts),
                                          element_size=next(model.parameters()).element_size(),
                                          device=accelerator.device, flag="training.generation_batch_size",
                                          past_length=longest_generation_past(
                                              tokenizer, recording, gen_starts,
                                              gen_clips if plan.mode == "trials" else None))
        if n_windows["train"] == 0:
            raise ValueError("split_fractions: the train split has no windows; give it a non-zero fraction")
        if streamed and n_windows["train"] < world:
            # each process streams its own windows and an epoch ends when one runs out: a process without any
            # ended every epoch at once, so no step was taken and the untrained model was saved (its NaN
            # validation loss reported as a diverged run)
            raise ValueError(
                f"{PREPARED_FIELD}: the train split of {str(prepared)!r} has {count_noun(n_windows['train'], 'window')}, "
                f"fewer than the {world} processes training; each process streams its own windows, so "
                f"{world - n_windows['train']} would get none and no step could be taken: train on at most "
                f"{n_windows['train']} {'process' if n_windows['train'] == 1 else 'processes'}, or "
                "prepare the windows with a longer train split (neuroformer prepare)")
        # the order of epoch e is a function of (seed, e) alone (the generator is reseeded at every
        # epoch), so a resumed run replays it and skips the batches already done
        gen = torch.Generator().manual_seed(training.seed)
        if streamed:
            # shard order and a bounded shuffle buffer, both reseeded per epoch (set_epoch below)
            train_ds = train_ds.shuffle(seed=training.seed, buffer_size=training.shuffle_buffer_size,
                                        **_buffer_input_shards(train_ds, manifest))
            if world > 1:
                train_ds = split_dataset_by_node(train_ds, rank=accelerator.process_index, world_size=world)
            loader = None
        else:
            loader = torch.utils.data.DataLoader(
                train_ds, batch_size=micro_batch, shuffle=True, collate_fn=collator, generator=gen, drop_last=False
            )
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "embeddings" in n]
        decay = [p for n, p in model.named_parameters() if not (p.ndim < 2 or "embeddings" in n)]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": training.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=training.learning_rate,
        )
        if streamed:
            model, optimizer = accelerator.prepare(model, optimizer)
            # per process; an upper bound when the processes' shares differ (see the docstring)
            micro_batches_per_epoch = math.ceil(math.ceil(n_windows["train"] / world) / micro_batch)
        else:
            model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
            # per process, the most any process gets (without even_batches the later ranks may get one less)
            micro_batches_per_epoch = math.ceil(math.ceil(n_windows["train"] / micro_batch) / world)
        contrastive_head = getattr(accelerator.unwrap_model(model), "contrastive", None)
        learned_temperature = (contrastive_head if contrastive_head is not None and contrastive_head.logit_scale.requires_grad
                               else None)
        n_unused = 0  # streamed: windows left on some processes when another ran out (this process)
        steps_per_epoch = math.ceil(micro_batches_per_epoch / ga)
        total_steps = int(min(training.max_steps, training.max_epochs * steps_per_epoch))
        if main and training.batch_size > n_windows["train"]:
            # the steps took the whole split, fewer windows than asked, and max_epochs then capped the run at
            # that many steps: metrics.json said micro_batch_size 5000 for steps of 950 windows, without a word
            cap = (f", so max_epochs {training.max_epochs} caps the run at {count_noun(total_steps, 'step')} (not "
                   f"max_steps {training.max_steps})" if total_steps < training.max_steps else "")
            warnings.warn(f"training.batch_size: {training.batch_size} windows per step, but the train split has "
                          f"{count_noun(n_windows['train'], 'window')}: every step takes all of them (one epoch per "
                          f"step){cap}; a batch_size up to {n_windows['train']} gives steps of the size asked",
                          UserWarning, stacklevel=stacklevel)
        scheduler = get_cosine_schedule_with_warmup(optimizer, int(training.warmup_ratio * total_steps), total_steps)
        accelerator.register_for_checkpointing(scheduler)
        eval_every = training.eval_every or steps_per_epoch

        def bare_model():
            # without Accelerate's autocast wrapper: evaluation and generation run in float32. This
            # removes the wrapper from the model for good (accelerate's unwrap_model), so it is called
            # once training is over; validation runs inside _float32_forward, which puts it back
            return accelerator.unwrap_model(model, keep_fp32_wrapper=False)

        log, best_val, best_state, best_step = [], float("inf"), None, 0
        # the validation figures of best_state, when this process scored them alone (see the scoring after training)
        best_val_nll = None
        step, epoch, done_in_epoch, running, time_before = 0, 0, 0, None, 0.0
        step_lr = None  # the learning rate of the last optimisation step, for training_log.json
        stretches = []  # the steps of earlier runs (a resumed run's checkpoint) by the settings they ran with
        first_nonfinite_step = None  # the first step whose training loss was NaN or infinite (training diverged)
        # the spikes of every split (and, streamed, the shards): resuming on other data would train the
        # steps after the checkpoint on another recording than those before it, silently
        spikes_digest = manifest.get("split_spikes") if streamed else split_spikes_digest(recording, plan)
        fingerprint = {"config": _config_fingerprint(config), "num_processes": world, "micro_batch_size": micro_batch,
                       "gradient_accumulation_steps": ga,
                       "data": _data_fingerprint(spikes_digest, n_windows, manifest if streamed else None)}
        if resume:
            last = latest_checkpoint(output_dir)
            state = json.loads((last / "trainer_state.json").read_text())
            _check_resume_fingerprint(last, state["fingerprint"], fingerprint)
            mixed = _contrastive_objective_changed(last, state, gathered)
            if mixed and is_main_rank():  # every rank resumes the same checkpoint: one warning, not one per process
                warnings.warn(mixed, UserWarning, stacklevel=stacklevel)
            changed = {k: (state["training"].get(k), v) for k, v in dataclasses.asdict(training).items()
                       if state["training"].get(k) != v}
            # the restored optimizer and scheduler states carry these: another value would be ignored
            # while training_config.json recorded it
            kept = {k: changed[k] for k in STATE_TRAINING_FIELDS if k in changed}
            if kept:
                field, (was, got) = next(iter(kept.items()))
                raise ValueError(
                    f"training.{field}: checkpoint {str(last)!r} was trained with {field}={was!r}, this run has {got!r} "
                    f"(all: {kept}); a resumed run continues the checkpoint's optimizer and learning-rate schedule, "
                    f"which keep the checkpoint's values: resume with {field}={was!r}, or {START_AFRESH}"
                )
            # the order of an epoch is drawn from these: a checkpoint written inside an epoch skips its first
            # micro-batches of another order, so some windows of that epoch were trained twice and others never
            order = {k: changed[k] for k in ORDER_TRAINING_FIELDS if k in changed and (streamed or k == "seed")}
            if order and state["micro_batches_done_in_epoch"]:
                field, (was, got) = next(iter(order.items()))
                raise ValueError(
                    f"training.{field}: checkpoint {str(last)!r} stopped {state['micro_batches_done_in_epoch']} "
                    f"micro-batches into epoch {state['epoch']}, whose window order {field}={was!r} drew; this run has "
                    f"{got!r} (all: {order}), which would skip those micro-batches of another order (some windows of the "
                    f"epoch trained twice, others never): resume with {field}={was!r}, or {START_AFRESH}"
                )
            if state["step"] > total_steps:  # max_steps was checked by check_resume: max_epochs is lower
                raise ValueError(
                    f"--max-epochs (training.max_epochs): {training.max_epochs} epochs of {steps_per_epoch} steps end at "
                    f"step {total_steps}, before the newest checkpoint {str(last)!r} at step {state['step']} (epoch "
                    f"{state['epoch']}); resume with a larger --max-epochs, or {START_AFRESH}"
                )
            if finished and not (state["step"] < total_steps and state["epoch"] < training.max_epochs):
                if block_s_asked:  # asked for, but nothing is scored
                    unapplied_block_s_warning(output_dir, ci_block_s, ci_block_s_option,
                                              stacklevel=stacklevel + 1)
                return _nothing_to_do(output_dir, (
                    f"resume: nothing to do: the run in {str(output_dir)!r} finished at step {state['step']} (checkpoint "
                    f"{last.name}, epoch {state['epoch']}) and this run would end there too (--max-steps "
                    f"{training.max_steps}, --max-epochs {training.max_epochs} of {steps_per_epoch} steps); its model is "
                    "left as it is. To train on, resume with a larger --max-steps and --max-epochs"))
            extended = {k: changed[k] for k in ("max_steps", "max_epochs") if k in changed}
            changed = {k: v for k, v in changed.items() if k not in extended}
            if changed and is_main_rank():  # the same on every rank: one warning, not one per process
                warnings.warn("resume: training settings differ from the checkpoint's "
                              f"(checkpoint, now): {changed}", UserWarning, stacklevel=stacklevel)
            # settings of another version of the package, not TrainingConfig fields: left out of `changed` (it
            # compares this run's fields), so train(resume=True) went on without them, without a word ('neuroformer
            # train --resume' had warned of them, reading the checkpoint's settings: it now leaves that to this one)
            unknown = _unknown_training_settings(last, state["training"])
            if unknown and is_main_rank():
                warnings.warn(unknown, UserWarning, stacklevel=stacklevel)
            _load_checkpoint(accelerator, last)
            if extended:
                # the restored scheduler steps the schedule of the new total (its lambda is rebuilt,
                # not restored), but the optimizer holds the learning rate of the checkpoint's
                # schedule (near 0 at the end of a finished run's cosine): set it on the new one
                for group, base, fn in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                    group["lr"] = base * fn(scheduler.last_epoch)
                scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
                if main:
                    print(f"[neuroformer] resume: {', '.join(f'{k} {a} -> {b}' for k, (a, b) in extended.items())}: "
                          f"the learning rate follows the schedule of a run of {total_steps} steps from step {state['step']}")
            step, epoch, done_in_epoch = state["step"], state["epoch"], state["micro_batches_done_in_epoch"]
            log, best_step, running, time_before = state["log"], state["best_step"], state["running_loss"], state["train_time_s"]
            first_nonfinite_step = state.get("first_nonfinite_step")
            # a checkpoint written before stretches were kept: its steps ran with its training settings
            stretches = state.get("training_stretches") or _with_stretch([], 1, step, TrainingConfig(**{
                k: state["training"][k] for k in STRETCH_TRAINING_FIELDS if k in state["training"]}))
            # the checkpoint holds the total over processes; it is carried on the main process
            n_unused = state.get("n_train_windows_unused", 0) if main else 0
            best_val = state["best_validation_loss"] if state["best_validation_loss"] is not None else float("inf")
            if (last / "best_model.safetensors").is_file():
                # a compiled run wrote '_orig_mod.' keys before its selection was kept with the plain model's
                best_state = {k.removeprefix("_orig_mod."): v for k, v in load_file(str(last / "best_model.safetensors")).items()}
            if main:
                print(f"[neuroformer] resumed from {last} (step {step} of {total_steps}, epoch {epoch})")
                # a checkpoint the stopped run was still writing: never resumed from (removed at the next save),
                # but the steps after this one's are trained again, which the user was not told
                half = sorted(p.name for p in ckpt_root.glob(".tmp-step-*") if p.name > ".tmp-" + last.name)
                if half:
                    print(f"[neuroformer] resume: {', '.join(half)} in {str(ckpt_root)!r} is a checkpoint the run was still "
                          f"writing when it stopped (incomplete, not used; removed at the next save): steps after "
                          f"{step} are trained again")
                if not finished and model_files_in(output_dir):
                    print(f"[neuroformer] resume: the model in {str(output_dir)!r} is not the one of checkpoint {last.name} "
                          "(a run stopped after its last checkpoint, before writing its model); it is replaced when this "
                          "run ends")
        elif overwrite and main:
            if ckpt_root.exists():
                for old in _checkpoints(ckpt_root):  # a kill meanwhile leaves whole checkpoints, or none
                    _discard_checkpoint(old)
                # check_checkpoint_folder let only checkpoints and a file browser's files through
                remove_checkpoint_folder(ckpt_root)
            # the replaced run's model stays whole until save_atomically replaces it (a run stopped before its
            # end keeps it); the record below says that it is the earlier model, and which checkpoints are this run's
        if main and is_main_rank():  # the process that saves the model, and holds the output folder's lock
            run_stack.enter_context(_unfinished_train_record(output_dir, last.name if resume else None))
        accelerator.wait_for_everyone()

        def save_checkpoint():
            unused_total = n_unused
            if streamed and world > 1:  # every process saves, so this collective is reached by all
                unused_total = int(accelerator.reduce(torch.tensor(n_unused, device=accelerator.device), reduction="sum"))
            trainer_state = {
                "step": step, "epoch": epoch, "micro_batches_done_in_epoch": done_in_epoch, "log": log,
                "best_step": best_step, "best_validation_loss": best_val if math.isfinite(best_val) else None,
                "running_loss": running, "train_time_s": time_before + time.time() - t_steps,
                "first_nonfinite_step": first_nonfinite_step,
                "n_train_windows_unused": unused_total,
                "fingerprint": fingerprint, "training": dataclasses.asdict(training),
                "training_stretches": _with_stretch(stretches, first_step + 1, step, training),
                # a resume under the other objective warns
                "contrastive_negatives": CONTRASTIVE_NEGATIVES if gathered else OWN_PROCESS_NEGATIVES,
            }
            _save_checkpoint(accelerator, ckpt_root, step, trainer_state, best_state, training.save_total_limit, save_file)

        def log_and_validate(step_epoch):
            """A ``training_log.json`` entry for this step: the running training loss and, with a
            validation split, its figures (the lowest validation loss keeps its weights)."""
            nonlocal best_val, best_step, best_state, best_val_nll
            if not has_val:  # nothing to validate on: the running training loss alone, for the loss curve
                log.append({"step": step, "epoch": step_epoch, "train_loss": running, "learning_rate": step_lr})
                return
            with _float32_forward(accelerator, model) as fp32_model:
                # a bar over its batches below the step bar, which stood still while the validation ran
                val = _evaluate_sharded(accelerator, fp32_model, dsets["validation"], collator, training.eval_batch_size,
                                        n_windows["validation"], progress=progress)
            if streamed:
                shards_unchanged()
            model.train()
            log.append({"step": step, "epoch": step_epoch, "train_loss": running, "learning_rate": step_lr,
                        **{f"validation/{k}": v for k, v in val.items()}})
            if val["loss"] < best_val:
                best_val, best_step = val["loss"], step
                # the plain model's keys, not a compiled one's ('_orig_mod.'): a resume may switch torch_compile
                best_state = {k: v.detach().cpu().clone()
                              for k, v in accelerator.unwrap_model(model, keep_torch_compile=False).state_dict().items()}
                # one process scored every window (no sum across processes): the same pass as the scoring after training
                best_val_nll = dict(val) if world == 1 else None
            if main:
                bar.write(f"step {step}: train loss {running:.4f}  val loss {val['loss']:.4f} "
                          f"(id {val['id_nll']:.4f}, dt {val['dt_nll']:.4f}){'  *best' if best_step == step else ''}")

        first_step = step
        # train_time_s: the time of the training steps (their validations and checkpoints), summed over the
        # runs of a resumed one; it began with t_start, before the windows were built, so it held the data's
        # preparation too, once more for every resume
        t_steps = time.time()
        bar = tqdm(total=total_steps, initial=step, desc="training", unit="step", disable=not (progress and main))
        while step < total_steps and epoch < training.max_epochs:
            model.train()
            gen.manual_seed(training.seed + epoch)
            if streamed:
                batches = _streamed_batches(train_ds, epoch, micro_batch, collator, accelerator.device, done_in_epoch)
            else:
                batches = iter(accelerator.skip_first_batches(loader, done_in_epoch) if done_in_epoch else loader)
            while step < total_steps:
                group = list(itertools.islice(batches, ga))
                if streamed:
                    shards_unchanged()  # this step's windows came from the shards verified at the start
                    # every process takes the same number of micro-batches, or DDP would wait forever
                    k = len(group)
                    if world > 1:
                        t = torch.tensor([k], device=accelerator.device)
                        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
                        k = int(t)
                    if k < len(group):  # another process ran out: the rest of this one's epoch is unused
                        n_unused += sum(int(b["input_ids"].shape[0]) for b in group[k:])
                        n_unused += sum(int(b["input_ids"].shape[0]) for b in batches)
                        group = group[:k]
                    if not group:
                        epoch, done_in_epoch = epoch + 1, 0
                        break
                elif not group and world == 1:  # not reached: an epoch ends on its last group (guard against a loop)
                    raise RuntimeError(f"train: epoch {epoch} yielded no batch after {done_in_epoch} of {micro_batches_per_epoch}")
                # the micro-batches of this step, the same number on every process (the loop position)
                n_micro = len(group) if streamed else min(ga, micro_batches_per_epoch - done_in_epoch)
                weights = [1.0] * len(group)
                if world > 1 and len(group) < n_micro:
                    # the other processes' share of the epoch's last step left fewer micro-batches (or none) to this
                    # one: it still takes part in the gradient synchronisation and in every micro-batch's gathered
                    # InfoNCE (a collective in the forward), with a window whose token loss counts zero times and
                    # that is no window of any modality (so no negative of the other processes' windows)
                    filler = batch_to_device(_without_contrasted_windows(collator([train_ds[0]])), accelerator.device)
                    weights += [0.0] * (n_micro - len(group))
                    group += [dict(filler) for _ in range(n_micro - len(group))]  # each loses its labels below
                contrasted = torch.stack([_contrasted_windows(b, contrastive_head) for b in group])
                if not gathered:  # whether each micro-batch of this process has a term of its own
                    contrasted = (contrasted >= 2).any(1, keepdim=True).long()
                counts = torch.cat([torch.stack([_label_counts(b) * w for b, w in zip(group, weights)]).sum(0).cpu(),
                                    contrasted.flatten()])
                counts = counts.to(accelerator.device)
                if world > 1:
                    counts = accelerator.reduce(counts, reduction="sum")
                # labelled id and dt tokens of the whole step (every process)
                n_id, n_dt = counts[:2].clamp(min=1).float().unbind()
                contrasted = counts[2:].reshape(len(group), contrasted.shape[1])
                if gathered:
                    # the micro-batches with a contrastive term: two windows with a token of a contrastive modality
                    # among those of every process (InfoNCE gathers them); times the processes, which all add the term
                    n_groups = ((contrasted >= 2).any(1).sum() * world).clamp(min=1).float()
                else:  # the micro-batches of every process that have a term of their own
                    n_groups = contrasted.sum().clamp(min=1).float()
                accelerator.step = ga - len(group)  # the last micro-batch of the group syncs and steps
                step_loss = torch.zeros((), device=accelerator.device)
                for batch, weight in zip(group, weights):
                    with accelerator.accumulate(model):
                        labels, dt_labels = batch.pop("labels"), batch.pop("dt_labels")
                        out = model(**batch, return_dict=True, output_attentions=False, output_hidden_states=False)
                        # this micro-batch's share of the mean over the whole step's tokens
                        loss = (_shifted_ce_sum(out.logits, labels) / n_id
                                + config.dt_loss_weight * _shifted_ce_sum(out.dt_logits, dt_labels) / n_dt) * weight
                        if out.contrastive_loss is not None:  # only built when contrastive_loss_weight > 0
                            # the step's contrastive term is the mean of its micro-batches' InfoNCE (those that have
                            # one), each gathered over every process: each process holds the whole micro-batch's
                            # term and adds 1 / num_processes of it (the gradient sync below sums them; a mean per
                            # process was num_processes times the weight given). Not times ``weight``: a filler
                            # micro-batch's process adds it too, or the gathered rows of the others lost its share
                            # of their gradient. Not gathered: each process adds its own micro-batch's term (a
                            # filler's is 0, its modality masks cleared) over the count of every process's terms
                            loss = loss + config.contrastive_loss_weight * out.contrastive_loss / n_groups
                        step_loss += loss.detach()
                        # DDP/FSDP average gradients over processes and Accelerate divides by the
                        # accumulation steps; the loss is already the step's token mean, so undo both
                        accelerator.backward(loss * (world * ga))
                        if accelerator.sync_gradients:
                            accelerator.clip_grad_norm_(model.parameters(), training.max_grad_norm)
                            # the rate this step updates with (the scheduler then sets the next step's)
                            step_lr = optimizer.param_groups[0]["lr"]
                            optimizer.step()
                            if learned_temperature is not None:  # back within 0.01..100, where the loss gives it a gradient
                                learned_temperature.cap_logit_scale_()
                            if not accelerator.optimizer_step_was_skipped:  # fp16 overflow: no update
                                scheduler.step()
                            optimizer.zero_grad()
                step_epoch, done_in_epoch = epoch, done_in_epoch + n_micro
                epoch_done = (len(group) < ga) if streamed else done_in_epoch >= micro_batches_per_epoch
                if epoch_done:  # the position is kept as "start of the next epoch"
                    epoch, done_in_epoch = epoch + 1, 0
                if world > 1:
                    step_loss = accelerator.reduce(step_loss, reduction="sum")
                step += 1
                loss_value = step_loss.item()
                if first_nonfinite_step is None and not math.isfinite(loss_value):
                    first_nonfinite_step = step
                running = running_loss(running, loss_value, step)
                bar.set_postfix(loss=f"{running:.3f}", epoch=step_epoch, refresh=False)  # drawn by update()
                bar.update(1)
                if step % eval_every == 0 or step == total_steps:
                    log_and_validate(step_epoch)
                if training.save_every and (step % training.save_every == 0 or step == total_steps):
                    save_checkpoint()
                if on_step_end is not None:
                    on_step_end(step, loss_value)
                if epoch_done:
                    break
        # a streamed run over several processes can end with its epochs before total_steps (planned
        # from the larger share, an upper bound): its last step is validated and checkpointed too
        if step > first_step and (not log or log[-1]["step"] != step):
            log_and_validate(step_epoch)
        if training.save_every and step > first_step and step % training.save_every and step != total_steps:
            save_checkpoint()
        bar.close()
        accelerator.wait_for_everyone()
        if streamed and world > 1:
            n_unused = int(accelerator.reduce(torch.tensor(n_unused, device=accelerator.device), reduction="sum"))
        model = bare_model()
        if getattr(model, "_orig_mod", None) is not None:  # torch.compile wrapper
            model = model._orig_mod
        if best_state is not None:
            model.load_state_dict(best_state)
            selection = "lowest validation loss"
        elif has_val:  # a NaN validation loss every time, which no step beats
            best_step = step
            selection = "last step (validation loss never finite)"
            # windows without a spike are one cause; with spikes in them the model's losses are NaN (training diverged),
            # and naming the empty windows sent the user looking at the data
            why = ("its windows hold no spike" if not n_spikes["validation"] else
                   f"its windows hold {n_spikes['validation']} spikes, so the model's losses are NaN: training diverged "
                   f"(see train_loss in training_log.json; {lower_rate})")
            if is_main_rank():  # validation losses are reduced over the ranks: the same on every one
                warnings.warn(f"validation: the validation loss was never finite (NaN: {why}), so the last checkpoint "
                              "is kept (none was selected)", UserWarning, stacklevel=stacklevel)
        else:
            best_step = step
            selection = "last step (no validation split)"
            if is_main_rank():  # the splits are the same on every rank
                warnings.warn("split_fractions: no validation windows, so the last checkpoint is "
                              "kept (none was selected)", UserWarning, stacklevel=stacklevel)
        # the step losses are summed over the ranks: every rank reaches this alike, and rank 0 says it
        if first_nonfinite_step is not None and (best_state is not None or not has_val) and is_main_rank():
            # a run without validation split (and test split) saved its NaN weights and said nothing; one whose
            # validation chose a step before the divergence said nothing of the NaN steps after it
            kept = (f"the model kept is step {best_step}'s, chosen on the validation split before it" if best_state is not None
                    else f"the model kept is the last step's ({best_step}), trained through the divergence")
            warnings.warn(f"training: the training loss was not finite (NaN or inf) from step {first_nonfinite_step} on: "
                          f"training diverged (see train_loss in training_log.json; {lower_rate}); {kept}",
                          UserWarning, stacklevel=stacklevel)
        if training.activation_checkpointing:
            model.activation_checkpointing_disable()
        train_time = time_before + time.time() - t_steps
        if on_train_end is not None:
            on_train_end(model)

        ran = _with_stretch(stretches, first_step + 1, step, training)
        # in the order they ran, a precision again after another one again (bf16, no, bf16): each precision once
        # said ['bf16', 'no'] of such a run, as if it had ended in float32
        precisions = [p for p, _ in itertools.groupby(r["mixed_precision"] for r in ran)] or [training.mixed_precision]
        metrics: Dict[str, object] = {}
        figures: Dict[str, object] = {}
        if accelerator.is_main_process:
            model.eval()
            if has_val and best_val_nll is not None and on_train_end is None:
                # the selected step's weights were scored on the validation split by this process when it was
                # selected (the same float32 forward, batches and sums): scoring them again gave the same figures for
                # the cost of a whole validation pass. A resumed run's best step, one chosen on several processes,
                # or weights on_train_end may have changed are scored again
                val = best_val_nll
            elif has_val:
                # the windows counted (a streamed split's from its shards, checked against the manifest): the bars' totals
                val = evaluate_token_nll(model, dsets["validation"], collator, training.eval_batch_size, progress=progress,
                                         n_windows=n_windows["validation"])
            if has_val:
                metrics.update({"validation/id_nll": val["id_nll"], "validation/dt_nll": val["dt_nll"],
                                "validation/loss": val["loss"]})
            if has_test:
                test = evaluate_token_nll(model, dsets["test"], collator, training.eval_batch_size, per_window=True,
                                          progress=progress, n_windows=n_windows["test"])
                # the recording's units: a prepared directory's tokenizer may hold other sessions' units too, which as
                # support of the smoothed baselines made them worse (Markov 1.70 -> 2.30 nats with 300 units of another
                # session); a directory prepared before its manifest listed them: every unit of the tokenizer
                unit_tokens = (tokenizer.unit_token_ids(recording) if not streamed
                               else manifest.get("unit_token_ids") or np.arange(config.num_special_tokens, len(tokenizer)))
                base = TokenBaselines(config.vocab_size, unit_tokens, config.num_dt_bins)
                base.fit(dsets["train"])
                btest = base.score(dsets["test"])
                metrics.update({
                    "test/id_nll": test["id_nll"],
                    "test/dt_nll": test["dt_nll"],
                    "test/unigram_id_nll": btest["unigram_id_nll"],
                    "test/markov_id_nll": btest["markov_id_nll"],
                    "test/marginal_dt_nll": btest["marginal_dt_nll"],
                    "test/markov_dt_nll": btest["markov_dt_nll"],
                    "test/n_spike_tokens": test["n_spike_tokens"],
                    **split_nll_intervals(test["windows"], plan, ci_block_s if block_s_asked else None,
                                          ci_block_s_option,
                                          window_span_s=model.config.current_window + model.config.past_window,
                                          stacklevel=stacklevel + 1),  # warnings at train's caller
                })
                if getattr(model, "contrastive", None) is not None:
                    from .contrastive import evaluate_retrieval

                    for name, r in evaluate_retrieval(model, dsets["test"], collator, seed=training.seed).items():
                        for key, value in r.items():
                            metrics[f"test/retrieval/{name}/{key}"] = value
            diverged = has_test and test["n_spike_tokens"] > 0 and not math.isfinite(test["id_nll"])
            if has_test and streamed:
                metrics["test/generation"] = ("not run: trained from prepared windows, without the recording; run "
                                              "'neuroformer generate' and 'neuroformer evaluate' on the recording")
            elif diverged:
                # sampling from NaN probabilities failed inside torch ("probability tensor contains either inf, nan
                # or element < 0") after the whole run, and the model was never written
                metrics["test/generation"] = ("not run: the model's test losses are NaN (training diverged: see train_loss "
                                              f"in training_log.json; {lower_rate})")
                warnings.warn("test: the selected model's test losses are NaN (training diverged), so the test split was "
                              "not generated; the model is saved as it is for inspection; "
                              f"{lower_rate}", UserWarning, stacklevel=stacklevel)
            elif has_test and not training.generate_test:
                metrics["test/generation"] = ("not run: training.generate_test is false; run 'neuroformer generate' and "
                                              "'neuroformer evaluate' on the recording")
            elif has_test:
                # generation tiles the test split with non-overlapping windows, whatever the training stride (and
                # whatever overlapping trials)
                starts, clips = generation_windows(plan, "test", config, stacklevel=stacklevel + 1)
                generated = generate_spikes(
                    model, tokenizer, recording, starts,
                    past_clip_starts=clips if plan.mode == "trials" else None,
                    batch_size=training.generation_batch_size,
                    temperature=training.generation_temperature,
                    top_p=training.generation_top_p,
                    seed=training.seed,
                    progress=progress,
                )
                fid = compare_recordings(recording, generated)
                if write_figures:
                    from .plotting import plot_fidelity  # matplotlib: imported by the runs that draw

                    figures["test_generation.png"] = draw_figure("test_generation.png", plot_fidelity, recording,
                                                                 generated,
                                                                 stacklevel=stacklevel + 1)
                metrics.update({
                    "test/id_f1": fid["id_f1"],
                    # why a figure is null, in evaluate's words (its report's id_f1_reason / rate_corr_reason);
                    # only beside a null figure, as a bootstrap interval's ..._ci95_reason
                    **_undefined_reason(fid, "id_f1"),
                    # the spike-timing F1 at the default 5 / 10 / 25 ms, beside its chance levels and their SD over
                    # the draws (an F1 alone does not say whether the rates explain it)
                    **{f"test/{k}": fid[k] for k in spike_timing_f1_keys(fid["timing_tolerances_s"])},
                    # why an F1 is null (neither recording has a spike in the test windows), as for rate_corr
                    **{k: v for tol in fid["timing_tolerances_s"]
                       for k, v in _undefined_reason(fid, f"timing_f1_{tolerance_label(tol)}").items()},
                    "timing_chance_draws": fid["timing_chance_draws"],
                    "test/rate_corr": fid["rate_corr"],
                    **_undefined_reason(fid, "rate_corr"),
                    "test/binned_count_corr_mean": fid["binned_count_corr_mean"],
                    **_undefined_reason(fid, "binned_count_corr_mean"),
                    # its bin width, for the model card (not under test/: the card lists those as metrics)
                    "binned_count_bin_size_s": fid["bin_size_s"],
                    "test/n_generated_spikes": fid["n_generated_spikes"],
                    "test/n_real_spikes": fid["n_real_spikes"],
                    "test/n_capped_generated_windows": generated.generation_stats["n_capped_windows"],
                })
            else:
                warnings.warn("split_fractions: no test windows, so no test metrics are written",
                              UserWarning, stacklevel=stacklevel)
            metrics.update({
                "n_train_windows": n_windows["train"],
                "n_validation_windows": n_windows["validation"],
                "n_test_windows": n_windows["test"],
                "n_truncated_spikes": int(sum(trunc.values())),
                "n_truncated_spikes_by_split": trunc,
                "n_truncated_past_spikes": int(sum(ptrunc.values())),
                **({"n_truncated_windows_by_split": twin} if twin is not None else {}),
                **({"n_truncated_past_windows_by_split": ptwin} if ptwin is not None else {}),
                **({"n_truncated_modality_tokens": mod_trunc} if mod_trunc else {}),
                **({"n_windows_without_modality_tokens": mod_empty} if mod_empty else {}),
                **({"n_events_in_no_window": ev_unread} if ev_unread else {}),
                "n_spikes_by_split": n_spikes,
                **({"n_spikes_outside_windows_by_split": {s: v["n_spikes_outside_windows"] for s, v in outside.items()},
                    "seconds_outside_windows_by_split": {s: round(v["seconds_outside_windows"], 6)
                                                         for s, v in outside.items()}} if outside is not None else {}),
                **({"n_train_windows_unused": n_unused} if streamed else {}),
                "checkpoint_selection": selection,
                "best_step": best_step,
                "total_steps": step,
                "train_time_s": train_time,
                "total_time_s": time.time() - t_start,
                "split_mode": plan.mode,
                "recording": manifest["recording"] if streamed else repr(recording),
                # what commands reading this model with a recording compare (windows.split_spikes_digest)
                **({"split_spikes": manifest["split_spikes"]} if streamed and "split_spikes" in manifest else {}),
                **({"split_spikes": spikes_digest} if not streamed else {}),
                # what the stimulus frames are (e.g. rendered gratings and the values assumed), for the model card
                **({"stimulus_description": recording.stimulus.description}
                   if (not streamed and any(m["kind"] == "video" for m in config.modalities)
                       and recording.stimulus is not None and recording.stimulus.description) else {}),
                "data": (f"streamed from prepared directory {str(prepared)!r}" if streamed else "in memory"),
                "num_parameters": int(sum(p.numel() for p in model.parameters())),
                # the launch: processes (torchrun / accelerate launch) and windows per process per micro-batch
                "num_processes": world,
                "micro_batch_size": micro_batch,
                **({"n_initial_tensors_given": n_initial} if n_initial is not None else {}),
                # the precision the steps ran in (the launcher's, when it set one: see _launcher_precision); a
                # resume may change it (warned, used): then each one, in the order they ran, with the stretches
                "mixed_precision": (precisions[0] if len(precisions) == 1 else precisions),
                "training_stretches": ran,
            })
            metrics = {k: _to_builtin(v) for k, v in metrics.items()}
            if log and write_figures:
                # without a validation split no step was chosen (the last one is kept): no mark
                from .plotting import plot_training_curves

                figures["training_curves.png"] = draw_figure("training_curves.png", plot_training_curves, log,
                                                             best_step=best_step if has_val else None,
                                                             selection=selection,
                                                             contrastive_loss_weight=(
                                                                 config.contrastive_loss_weight),
                                                             stacklevel=stacklevel + 1)
            if streamed:  # the test metrics and baselines read the shards again
                shards_unchanged()
            with transformers_progress_bars(progress):  # its "Writing model shards" bar, when progress is off
                save_atomically(
                    output_dir,
                    model,
                    tokenizer,
                    {
                        "metrics.json": metrics,
                        "splits.json": plan.to_dict(),
                        "training_log.json": log,
                        "training_config.json": dataclasses.asdict(training),
                    },
                    overwrite=overwrite or resume,  # resuming a finished run replaces its model
                    figures=figures,
                )
        accelerator.wait_for_everyone()
        return metrics


@contextlib.contextmanager
def _float32_forward(accelerator, model):
    """``model`` unwrapped (DDP, compile) and without Accelerate's mixed-precision forward wrapper
    (autocast) inside the block; the wrapper is put back after it.

    ``accelerator.unwrap_model(model, keep_fp32_wrapper=False)`` takes the wrapper off the model
    object itself, for good: validation called it, so a bf16 run trained under autocast only until
    its first validation (``eval_every``, default once per epoch) and in float32 after it, while
    ``metrics.json`` said ``mixed_precision: bf16``; a run resumed from a checkpoint went back to
    bf16 until its next validation, so it no longer matched the uninterrupted run.
    """
    inner = accelerator.unwrap_model(model, keep_torch_compile=False)  # what holds the wrapper
    saved = {k: inner.__dict__[k] for k in ("forward", "_original_forward") if k in inner.__dict__}
    try:
        yield accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    finally:
        for k in ("forward", "_original_forward"):
            inner.__dict__.pop(k, None)
        inner.__dict__.update(saved)


def unapplied_block_s_warning(output_dir, ci_block_s: float, option: str = "ci_block_s=", *,
                              stacklevel: int = 3) -> None:
    """Warn that a resumed run with nothing to do leaves ``metrics.json``'s test intervals as they
    were: ``ci_block_s`` (named as ``option`` words it) is not applied, when the run's recorded
    block length (``test/ci95_block_s``) is another. Nothing when the file records none (a trial
    split, or an older run) or the same length. ``stacklevel``: where the warning points, as
    ``warnings.warn`` takes it (3, the default: the caller of this function's caller)."""
    path = Path(output_dir) / "metrics.json"
    recorded = json.loads(path.read_text()).get("test/ci95_block_s") if path.is_file() else None
    if recorded is None or float(recorded) == float(ci_block_s) or not is_main_rank():
        return
    join = "" if option.endswith("=") else " "
    warnings.warn(f"{option}{join}{float(ci_block_s):g} not applied: the resumed run has nothing to do, so nothing is "
                  f"scored and metrics.json keeps its test intervals over blocks of {float(recorded):g} s "
                  "(test/ci95_block_s); resume with a larger --max-steps (training.max_steps) to train on and "
                  "score again", UserWarning, stacklevel=stacklevel)


def _nothing_to_do(output_dir: Path, message: str) -> Dict[str, object]:
    """A resumed run that has no step left and whose model is already written: ``message``
    printed (main process) and the model's ``metrics.json`` returned (``{}`` on the others)."""
    if not is_main_rank():
        return {}
    print(f"[neuroformer] {message}")
    path = output_dir / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _undefined_reason(fidelity: Dict[str, object], key: str) -> Dict[str, str]:
    """``{"test/<key>_reason": why}`` when the test generation's ``<key>`` (``"rate_corr"``,
    ``"binned_count_corr_mean"`` or ``"id_f1"`` of :func:`~hf_neuroformer.metrics.compare_recordings`,
    every NaN-able summary that ``metrics.json`` copies) is NaN (null in ``metrics.json``), in the
    words of ``neuroformer evaluate``'s ``<key>_reason``; ``{}`` when it is a number. A null figure
    without it did not say why (fewer than 3 units, fewer than 3 bins in the test windows, no spike
    in them ...), though evaluate's report on the same windows did."""
    reason = fidelity.get(f"{key}_reason")
    return {f"test/{key}_reason": reason} if reason else {}


def draw_figure(name: str, plot: Callable, *args, stacklevel: int = 2, **kwargs):
    """``plot(*args, **kwargs)``, or None with a warning naming ``name`` when the figure cannot be
    drawn (bad input to the plot, e.g. trials too short for its bins): a figure must never cost
    the trained model and its metrics, which ``train`` and ``finetune`` write without it.
    ``stacklevel``: where the warning points, as ``warnings.warn`` takes it (2: the caller of
    this function; ``train`` and ``finetune`` pass 3, their own caller's line)."""
    try:
        return plot(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - see the docstring
        warnings.warn(f"{name}: not drawn ({type(err).__name__}: {err}); the model and metrics.json are written "
                      "without it", UserWarning, stacklevel=stacklevel)
        return None


#: NeuroformerConfig fields that ``train`` fills in from the recording (the tokenizer's vocabulary, the
#: modalities' statistics fitted on the train split): on resume, a difference there comes from other data.
_FIELDS_FROM_DATA = ("vocab_size", "modalities")
#: Modality keys that checkpoints written before they existed lack (``frame_interval``, d40cc71): a check of the
#: recording given to a trained model, on which no weight depends.
_MODALITY_KEYS_ADDED_LATER = ("frame_interval",)


#: NeuroformerConfig fields added after checkpoints were written without them: a checkpoint's config that
#: lacks one is not compared on it (``contrastive_gather_across_processes``: what such a checkpoint's
#: negatives were is its ``contrastive_negatives`` record, see :func:`_contrastive_objective_changed`).
_CONFIG_FIELDS_ADDED_LATER = ("contrastive_gather_across_processes",)


def _as_checkpoint_recorded(old_cfg: dict, new_cfg: dict) -> dict:
    """``new_cfg`` (a config fingerprint) with the fields of :data:`_CONFIG_FIELDS_ADDED_LATER` and the
    modality keys of :data:`_MODALITY_KEYS_ADDED_LATER` that the checkpoint's config (``old_cfg``)
    lacks taken as the checkpoint's, so that a checkpoint written before such a field or key existed
    is not refused for it; a value the checkpoint holds is compared."""
    new_cfg = {k: v for k, v in new_cfg.items() if k in old_cfg or k not in _CONFIG_FIELDS_ADDED_LATER}
    old, new = old_cfg.get("modalities"), new_cfg.get("modalities")
    if not (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
            and all(isinstance(m, dict) for m in old + new)):
        return new_cfg
    mods = [{k: v for k, v in n.items() if k in o or k not in _MODALITY_KEYS_ADDED_LATER} for o, n in zip(old, new)]
    return dict(new_cfg, modalities=mods)


def _config_differs(checkpoint: Path, stored: dict, now: dict, diff: dict) -> None:
    """Raise the refusal of a resume whose model config differs from the checkpoint's (``diff``:
    field -> (checkpoint's, now), the first named); ``stored`` / ``now``: the checkpoint's and this
    run's fingerprints (``now`` without ``"data"`` when the data is not read yet)."""
    field, (was, got) = next(iter(diff.items()))
    # another recording as well: named here too, or the advice to resume with the checkpoint's config led
    # to a second refusal, for the data (the windows' spikes follow the config on the same recording)
    was_data, got_data = stored.get("data") or {}, now.get("data")
    spikes = [k for k in ("spikes_sha256", "shards_sha256")
              if got_data is not None and k in was_data and was_data[k] != got_data.get(k)]
    data = (f"; the spikes of the splits differ from the checkpoint's too ({', '.join(spikes)}): unless the "
            "config explains it, resume with the recording (--data, --epoch) the run started on as well"
            if spikes else "")
    raise ValueError(
        f"resume: checkpoint {str(checkpoint)!r} was written with config.{field}={was!r}, this run has {got!r} "
        f"(all differences, checkpoint vs now: {diff}); resume with the model config of the checkpoint "
        f"(the same --config), or {START_AFRESH}{data}"
    )


def _check_resume_config(checkpoint: Path, stored: dict, now: dict) -> dict:
    """Refuse (:func:`_config_differs`) a model config whose fields set by the user differ from the
    checkpoint's; return every differing field, those the data sets (:data:`_FIELDS_FROM_DATA`)
    included, as field -> (checkpoint's, now). ``stored`` / ``now``: fingerprints, ``"config"``
    from :func:`_config_fingerprint`."""
    # a checkpoint's modality keys that were never applied (bin_size on events), refused since: as now read
    old_cfg = saved_modalities_without_ignored_keys(stored.get("config") or {})
    new_cfg = _as_checkpoint_recorded(old_cfg, now["config"])
    diff = {k: (old_cfg.get(k), new_cfg.get(k)) for k in sorted(set(old_cfg) | set(new_cfg))
            if old_cfg.get(k) != new_cfg.get(k)}
    # a field set in the config first: another current_window or split_block_length cuts the same recording into
    # other windows, and was refused as "other data than this run's recording: resume with the recording the run
    # started on", naming no field. The fields that the data sets (the vocabulary, the modalities' fitted
    # statistics) are named after the data: other units gave another vocab_size
    given = {k: v for k, v in diff.items() if k not in _FIELDS_FROM_DATA}
    if given:
        _config_differs(checkpoint, stored, now, given)
    return diff


#: How the contrastive InfoNCE picks its negatives, recorded in each checkpoint's trainer_state
#: (``contrastive_negatives``): from the micro-batches of every process (gathered, as CLIP does). A
#: checkpoint of several processes without it was written when each process contrasted its own windows.
CONTRASTIVE_NEGATIVES = "all processes"
#: ``contrastive_negatives`` of a run with ``config.contrastive_gather_across_processes=False``: from the
#: micro-batch of the window's own process.
OWN_PROCESS_NEGATIVES = "own process"


def _contrastive_objective_changed(checkpoint: Path, state: dict, gathered: bool = True) -> Optional[str]:
    """The warning for resuming ``checkpoint`` (its ``trainer_state``) under another contrastive
    objective than the one it was trained with, or None. ``gathered``: this run's
    ``config.contrastive_gather_across_processes``.

    A checkpoint of a contrastive run (``contrastive_loss_weight`` > 0) on several processes written
    before InfoNCE gathered its negatives across processes (no ``contrastive_negatives`` record)
    contrasted each window with its own process's micro-batch only, as a run with the gather off
    does; resumed with the gather on, its steps take the negatives from every process's
    micro-batch: another loss, which the launch-shape check does not see (the config check does not
    either: such a checkpoint's config has no ``contrastive_gather_across_processes``). On one
    process the two are the same.
    """
    fingerprint = state.get("fingerprint") or {}
    weight = (fingerprint.get("config") or {}).get("contrastive_loss_weight") or 0
    processes = fingerprint.get("num_processes") or 1
    was = state.get("contrastive_negatives", OWN_PROCESS_NEGATIVES)
    now = CONTRASTIVE_NEGATIVES if gathered else OWN_PROCESS_NEGATIVES
    if weight <= 0 or processes <= 1 or was == now:
        return None
    if "contrastive_negatives" not in state:
        return (f"resume: checkpoint {str(checkpoint)!r} (contrastive_loss_weight {weight}, {processes} processes) was "
                "written before the contrastive InfoNCE gathered its negatives across processes: its steps contrasted "
                "each window with the windows of its own process's micro-batch only, the resumed steps contrast it "
                "with those of every process's micro-batch (more negatives, another loss), so this run mixes the two "
                "objectives; to train with one, set contrastive_gather_across_processes: false (the checkpoint's "
                f"objective) or {START_AFRESH}")
    return (f"resume: checkpoint {str(checkpoint)!r} (contrastive_loss_weight {weight}, {processes} processes) took "
            f"its contrastive negatives from {was!r}, the resumed steps from {now!r} "
            f"(contrastive_gather_across_processes {gathered}), so this run mixes the two objectives; to train with "
            f"one, {START_AFRESH}")


def _check_resume_fingerprint(checkpoint: Path, stored: dict, now: dict) -> None:
    """Refuse to resume a checkpoint written with another model config, data or launch shape.

    Raises:
        ValueError: naming the first differing model-config field (or launch setting) with both
            values, and all differing fields, not the two whole configs. A config field given by the
            user is named before the data (it changes the windows of the same recording); the data
            before the fields the data sets (:data:`_FIELDS_FROM_DATA`).
    """
    diff = _check_resume_config(checkpoint, stored, now)
    if "data" in stored and stored["data"] != now["data"]:
        was, got = stored["data"], now["data"]
        what = []
        for k in sorted(set(was) | set(got)):
            a, b = was.get(k), got.get(k)
            if a != b and isinstance(a, dict) and isinstance(b, dict):
                what.append(f"{k} of " + ", ".join(s for s in sorted(set(a) | set(b)) if a.get(s) != b.get(s)))
            elif a != b:
                what.append(k)
        windows = f" (windows per split: checkpoint {was.get('n_windows')}, now {got.get('n_windows')})"
        raise ValueError(
            f"resume: checkpoint {str(checkpoint)!r} was trained on other data than this run's recording (--data, "
            f"--epoch): {'; '.join(what)} differ{windows}; resume with the recording (and epoch) the run started "
            f"on, or {START_AFRESH}"
        )
    if diff:
        _config_differs(checkpoint, stored, now, diff)
    launch = ("micro_batch_size", "gradient_accumulation_steps", "num_processes")
    if all(isinstance(stored.get(k), int) for k in launch) and any(stored[k] != now[k] for k in launch):
        # micro_batch_size is no setting of its own: name the ones it comes from
        def shape(d):
            return (f"batch_size {d['micro_batch_size'] * d['gradient_accumulation_steps'] * d['num_processes']} = "
                    f"{d['micro_batch_size']} windows per micro-batch x gradient_accumulation_steps "
                    f"{d['gradient_accumulation_steps']} x {d['num_processes']} "
                    f"{'process' if d['num_processes'] == 1 else 'processes'}")

        raise ValueError(
            f"resume: checkpoint {str(checkpoint)!r} was written with {shape(stored)}, this run has {shape(now)}; "
            "resume with the checkpoint's --batch-size (training.batch_size), --gradient-accumulation-steps and number "
            f"of processes (the data order and the optimizer steps depend on them), or {START_AFRESH}")
    for key, value in now.items():
        if key not in ("config", "data") and stored.get(key) != value:
            raise ValueError(f"resume: checkpoint {str(checkpoint)!r} was written with {key}={stored.get(key)!r}, "
                             f"this run has {value!r}; resume with the same launch shape, or {START_AFRESH}")


def _buffer_input_shards(dataset, manifest: dict) -> dict:
    """``shuffle``'s ``max_buffer_input_shards`` for a prepared directory: 1 (the buffer is filled
    from one shard at a time) when every train shard spans the whole split (``train_shard_layout:
    "interleaved"``, :func:`~hf_neuroformer.windows.prepare_windows`), else ``datasets``' default
    (up to 10 shards read at once by threads). With shards read by threads, ``datasets`` 5.x pauses
    5 s at the end of every epoch (``config.SLEEP_TIME_ON_THREADS_SHUTDOWN``, its guard against a
    pyarrow hang when the reader threads shut down, apache/arrow#45214); one shard at a time uses
    no reader threads and no pause. A directory prepared before the interleaved layout (no
    ``train_shard_layout``) keeps the default, even with one train shard: several contiguous
    shards so that the buffer does not hold one stretch of time, and one shard because the two
    settings give one shard's windows in different orders (another rebatching of the buffer), so
    a checkpoint written before would resume on other batches than the rest of its epoch."""
    import inspect

    if manifest.get("train_shard_layout") != TRAIN_SHARD_LAYOUT:
        return {}
    if "max_buffer_input_shards" not in inspect.signature(dataset.shuffle).parameters:  # an older datasets
        return {}
    return {"max_buffer_input_shards": 1}


def _data_fingerprint(spikes_digest, n_windows: Dict[str, int], manifest: Optional[dict] = None) -> dict:
    """What a checkpoint's training data is, to compare on resume: the windows per split, the
    sha256 of each split's spikes (:func:`~hf_neuroformer.windows.split_spikes_digest`) and, for
    a prepared directory (``manifest``), the sha256 of each split's shards."""
    out = {"n_windows": {s: int(n) for s, n in n_windows.items()}}
    if isinstance(spikes_digest, dict) and isinstance(spikes_digest.get("splits"), dict):
        out["spikes_sha256"] = {s: d.get("sha256") for s, d in spikes_digest["splits"].items()}
    if manifest is not None:
        out["shards_sha256"] = {s: [sh.get("sha256") for sh in e.get("shards", [])]
                                for s, e in manifest.get("splits", {}).items()}
    return out


def _drops_output_attentions(config: NeuroformerConfig, training: "TrainingConfig") -> bool:
    """Whether :func:`train` sets ``config.output_attentions`` to False before the model is built and
    its checkpoints record the config: True with an attention implementation other than eager."""
    return bool(config.output_attentions) and training.attn_implementation != "eager"


def _config_fingerprint(config: NeuroformerConfig) -> dict:
    """The model config as JSON values (what a checkpoint's weights depend on): without the saved
    model's bookkeeping (``architectures``, ``dtype``), which the config of the run's own saved model
    (``NeuroformerConfig.from_pretrained(output_dir)``) holds and the run's checkpoints do not."""
    d = json.loads(config.to_json_string(use_diff=False))
    for k in ("transformers_version", "_attn_implementation_autoset", "attn_implementation", "architectures", "dtype"):
        d.pop(k, None)
    return d


def _save_checkpoint(accelerator, root: Path, step: int, trainer_state: dict, best_state, keep: int, save_file) -> None:
    """Write a resumable checkpoint ``root/step-NNNNNNNN`` atomically and keep the newest ``keep``.

    Every process writes into one temporary folder (Accelerate ``save_state``: the weights,
    optimizer, scheduler and scaler from the main process, each process's RNG states); the main
    process adds ``trainer_state.json`` (loop position, log, selection) and the
    validation-selected weights, flushes every file to disk (as a model save does,
    :func:`hf_neuroformer.save_journal.fsync_tree`), then renames the folder into place, so a crash
    (a power cut too) leaves either the whole checkpoint or none (a half-written ``.tmp-step-*`` folder is never resumed from and
    is removed at the next completed save). With several machines, ``root`` must be on a shared
    filesystem.
    """
    final, tmp = root / f"step-{step:08d}", root / f".tmp-step-{step:08d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with open(tmp / "trainer_state.json", "w") as f:
            json.dump(trainer_state, f, indent=1, default=_json_default)
        if best_state is not None:
            save_file(best_state, str(tmp / "best_model.safetensors"))
        open_up_safetensors(tmp)
        # flushed before the rename, as a model save flushes its staged files: else a power cut after it
        # could leave step-* holding empty or partly written files, which resume takes for a checkpoint
        fsync_tree(tmp)
        if final.exists():
            _discard_checkpoint(final, ".replaced")
        os.replace(tmp, final)
        fsync_path(root, directory=True)  # the rename itself
        for old in _checkpoints(root)[:-keep]:
            _discard_checkpoint(old)
        # half-written checkpoints of a run killed while saving (never resumed from): gone once a
        # whole one exists, so they do not pile up beside it
        for stale in root.glob(".tmp-step-*"):
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()


def _load_checkpoint(accelerator, checkpoint: Path) -> None:
    """``accelerator.load_state(checkpoint)``: weights, optimizer, scheduler, scaler and this process's
    RNG states, all of them or an error.

    Accelerate passes over RNG states it cannot read (an info log, "Could not load random states"),
    so a checkpoint without this process's ``random_states_<rank>.pkl``, or with it cut short, resumed
    with the seed's fresh random numbers (other dropout than the uninterrupted run's) without a word:
    the file is read here first.

    Raises:
        ValueError: naming the checkpoint, the error, and the older checkpoint to fall back to.
    """
    from accelerate.utils import load

    rng = checkpoint / f"random_states_{accelerator.process_index}.pkl"
    try:
        if not rng.is_file():
            raise FileNotFoundError(f"no {rng.name}, this process's RNG states")
        try:
            load(rng)
        except Exception as err:  # noqa: BLE001 - whatever unpickling a cut-short file raises
            raise ValueError(f"{rng.name}: {type(err).__name__}: {err}") from err
        accelerator.load_state(str(checkpoint))
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError, SafetensorError) as err:
        raise ValueError(f"resume: checkpoint {str(checkpoint)!r} cannot be read ({type(err).__name__}: {err}): damaged, "
                         f"or copied in part? {_fallback(checkpoint)}, or {START_AFRESH}") from err


def remove_checkpoint_folder(folder, ignore_errors: bool = False) -> None:
    """Delete a run's ``checkpoints`` folder; a symbolic link to a folder elsewhere (a larger disk) is
    emptied and kept, where ``shutil.rmtree`` refuses a link ("Cannot call rmtree on a symbolic link";
    with ``ignore_errors`` it left every checkpoint in the linked folder without a word). ``train
    --overwrite`` and a finished ``finetune`` call it. Raises ``OSError`` unless ``ignore_errors``."""
    folder = Path(folder)
    if not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=ignore_errors)
        return
    if not folder.is_dir():  # a link to a folder that is gone: nothing in it to delete
        return
    for entry in folder.iterdir():
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=ignore_errors)
            else:
                entry.unlink()
        except OSError:
            if not ignore_errors:
                raise


def _discard_checkpoint(checkpoint: Path, suffix: str = "") -> None:
    """Delete the checkpoint folder ``checkpoint`` (``step-*``) so that a process killed meanwhile
    never leaves part of it under its own name: it is renamed to ``.tmp-<name><suffix>`` first (a
    half-written checkpoint to every reader: never resumed from, removed at the next save), then
    deleted. Deleted in place, a run killed while dropping an old checkpoint (``save_total_limit``)
    or the checkpoints of the run that ``overwrite`` replaces left a ``step-*`` folder without some
    of its files, which ``resume`` and the advice to fall back to the checkpoint before took for whole."""
    trash = checkpoint.with_name(".tmp-" + checkpoint.name + suffix)
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(checkpoint, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _to_builtin(v):
    """numpy scalars -> Python numbers, so returned metrics equal what metrics.json holds."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _to_builtin(x) for k, x in v.items()}
    return v


__all__ = ["TrainingConfig", "load_yaml_config", "train", "model_files_in", "OutputDirLockedError",
           "RUN_LOCK", "UNFINISHED_FINETUNE", "UNFINISHED_TRAIN", "output_dir_lock", "evaluate_token_nll", "check_output_dir", "save_atomically",
           "latest_checkpoint",
           "CHECKPOINT_FILES", "MODEL_FILES", "RUN_FIGURES", "RUN_TABLES", "RUN_RECORDS", "config_over_prepared",
           "check_checkpoint_folder", "check_checkpoints_not_a_file", "split_nll_intervals", "STATE_TRAINING_FIELDS",
           "check_resume", "RUNNING_LOSS_WEIGHT", "running_loss", "checkpoint_training_config"]
