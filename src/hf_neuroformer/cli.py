"""The ``neuroformer`` command: parses arguments and calls the library, nothing else.

    neuroformer train    [--config FILE.yaml] [--data PATH] [--epoch NAME] [--output-dir DIR]
                         [--max-steps N] [--max-epochs N] [--seed S]
                         [--mixed-precision no|bf16|fp16] [--gradient-accumulation-steps N]
                         [--batch-size B] [--save-every N] [--resume] [--attn-implementation sdpa|eager]
                         [--activation-checkpointing] [--compile] [--ci-block-s S] [--overwrite]
    neuroformer generate --model DIR [--data PATH] [--epoch NAME] --output OUT.nwb [--split test]
                         [--mode teacher_forced|free_running] [--order free|canonical] [--seed S] [--temperature T]
                         [--top-p P] [--top-k K] [--dt-temperature T] [--dt-top-p P] [--dt-top-k K]
                         [--batch-size B] [--overwrite]
    neuroformer evaluate [--real PATH] [--epoch NAME] --generated PATH [--output FILE.json]
                         [--model DIR [--split test] [--ci-block-s S]] [--figure FILE.png] [--bin-size S]
                         [--psth-bin-size S] [--min-isis N] [--timing-tolerances S,S,...]
                         [--timing-chance-draws N] [--overwrite]
    neuroformer prepare  [--config FILE.yaml] [--data PATH] [--epoch NAME] --output DIR [--num-shards K]
                         [--overwrite]
    neuroformer finetune --model DIR [--from-scratch] --data PATH [--epoch NAME] --target VAR|VAR[k][,...]
                         [--kind regression|classification|circular[,...]] [--fraction F] [--output-dir DIR]
                         [--max-steps N] [--seed S] [--batch-size B] [--gradient-accumulation-steps N]
                         [--learning-rate LR] [--eval-steps N] [--generative-loss-weight W]
                         [--freeze-backbone-steps N] [--ema-decay D] [--spike-dropout P]
                         [--regression-loss mse|hl_gauss [--num-bins K] [--hl-gauss-sigma-ratio R]]
                         [--class-weight balanced|none] [--select-on auto|loss|TARGET/METRIC] [--set KEY=VALUE ...]
                         [--ci-block-s S] [--overwrite]
    neuroformer decode   --model DIR [--data PATH] [--epoch NAME] [--split train|validation|test] --output OUT.csv
                         [--figure PNG] [--batch-size B] [--ci-block-s S] [--overwrite]
    neuroformer embed    --model DIR [--data PATH] [--epoch NAME] --color-by VAR --output FIGURE [--split test]
                         [--projected MODALITY] [--batch-size B] [--overwrite]
    neuroformer ablate   --config FILE.yaml [--data PATH] [--epoch NAME] --output TABLE.md [--max-steps N]
                         [--seed S | --seeds S,S,...] [--contrastive-loss-weight W] [--work-dir DIR] [--overwrite]
    neuroformer push     --model DIR --repo-id NAMESPACE/NAME [--private] [--revision BRANCH]
                         [--license ID] [--provenance TEXT] [--commit-message TEXT]
                         [--data PATH [--epoch NAME] --dataset-repo-id NAMESPACE/NAME [--num-shards K]]
    neuroformer simulate --kind hub|hub-glm|glm --output OUT.nwb [--units N] [--hubs H] [--targets-per-hub K]
                         [--duration S] [--seed S] [--codegen numpy|cython] [--overwrite]
    neuroformer connectivity --model DIR --data SIM.nwb --output DIR [--split test] [--max-windows N]
                         [--bin-size S] [--corr-bin-size S] [--device cpu|cuda] [--overwrite]
    neuroformer attention-map --model DIR --data PATH --output PNG [--units 3,17] [--window-index K]
                         [--split test] [--max-windows N] [--modality NAME] [--device cpu|cuda] [--overwrite]

``finetune --target``: a behaviour series, ``trial:<column>``, or ``NAME[k]`` for column k of a 2-D
series (a series whose own name is ``NAME[k]`` is that series); a 2-D series without ``[k]`` is decoded
column by column, as targets ``NAME[0]``, ``NAME[1]``, ...
``--kind``: one kind per ``--target`` item; a 2-D item's kind applies to each of its columns.

``--ci-block-s S`` (``train``, ``evaluate --model``, ``finetune``, ``decode``): the length (s, > 0;
default 10; for ``decode``, the length the decoder was fine-tuned with) of the blocks of
consecutive test windows that the 95 % block-bootstrap intervals resample in a time split (a trial split's blocks are its trials); below 5 blocks an interval is
null and its reason names a shorter length that gives 5.

Without ``--data`` (or ``--real``) the built-in simulated recording is used. ``neuroformer train
--data DIR`` with a ``neuroformer prepare`` directory streams its windows from the Parquet shards.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import dataclasses
import signal
import threading
import json
import warnings
import sys
from pathlib import Path
from typing import Dict, Optional

# the standard library only: the console script loads it with this module, without the package (torch)
from .argument_checks import DEFAULT_N_HUBS, DEFAULT_TARGETS_PER_HUB, KINDS, MAX_BRIAN2_SEED, MAX_CLI_DURATION, \
    MAX_TRAINING_SEED, REGRESSION_LOSSES, \
    SEED_RANGE, check_bin_size, check_hl_gauss_settings, check_block_s, check_ema_decay, check_finetune_settings, check_hub_layout, \
    check_min_coverage, check_min_isis, check_pass_counts, check_sampling_ranges, check_spike_dropout, \
    check_spike_tolerances, check_training_seed, \
    check_whole, config_settings, is_main_rank, override_keys, target_label_form, tolerance_label


def config_setting(text: str):
    """argparse ``type`` of ``--set KEY=VALUE`` -> ``(key, value)``: VALUE read as JSON (``0.3``,
    ``null``, ``"current"``), else kept as text (``current+past``); the key is not checked here
    (``neuroformer finetune`` does, with :func:`~hf_neuroformer.argument_checks.override_keys`, before
    torch is imported; the value once the model's config is read). The standard library only, so
    that a malformed ``--set`` is a usage error before torch is imported (it imported the
    finetuning module, seconds of CPU, to say so).

    Raises:
        argparse.ArgumentTypeError: no ``=`` or an empty KEY.
    """
    key, sep, value = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. hidden_dropout=0.3, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _load_data(path, epoch, flag: str = "--data", no_model_command: Optional[str] = None):
    """The recording of ``--data`` (or ``--real``) and ``--epoch``; the built-in simulated one without a path.

    ``no_model_command``: the name of a command that has no ``--model`` (``train``, ``prepare``,
    ``inspect``, ...): a model directory given as ``flag`` is then refused without the readers'
    advice to pass it as --model, which that command does not take.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: anything the readers refuse (a file that is not what its extension says, a
            CSV without numbers, an unknown epoch, a model directory, ...), as one line naming
            ``flag`` and the file.
    """
    if path is None:
        from .simulation import default_recording

        rec = default_recording()
        if epoch is not None:
            rec = rec.select_epoch(epoch)
        return rec
    from .io import check_input_exists, is_model_directory, load_recording, read_error

    check_input_exists(path, flag)
    if no_model_command is not None and is_model_directory(path):
        # the readers' 'pass it as --model' named a flag that train, prepare and inspect do not have
        further = (" (to train a model further: 'neuroformer train --resume' with its --output-dir, which needs "
                   "its checkpoints; to fine-tune it: 'neuroformer finetune --model')"
                   if no_model_command == "train" else "")
        raise ValueError(f"{flag}: {str(path)!r} is a model directory (config.json and weights), not a recording; "
                         f"'neuroformer {no_model_command}' reads no model: pass the recording itself as {flag}"
                         + further)
    try:
        return load_recording(path, epoch=epoch)
    except (ValueError, KeyError, OSError) as err:  # the package's errors are ValueErrors; h5py/pandas raise OSError too
        msg = str(err.args[0] if isinstance(err, KeyError) and err.args else err)
        if epoch is not None and isinstance(err, KeyError) and msg.startswith(f"epoch {epoch!r} not found"):
            # the flag at fault is --epoch, not the file (it said "--data: '<file>': epoch ... not found")
            raise ValueError(f"--epoch: {msg} ({flag} {str(path)!r})") from None
        raise read_error(err, flag, path) from None


def _default_config(data_path):
    """``NeuroformerConfig()`` when no ``--config`` is given; for the built-in simulated
    recording (no ``--data``) with ``split_block_length`` =
    :data:`~hf_neuroformer.simulation.DEFAULT_RECORDING_SPLIT_BLOCK_LENGTH` (10 s), since the
    30-s default cuts its 140 s into only 5 blocks. Prints which one it is."""
    from .configuration_neuroformer import NeuroformerConfig

    if data_path is not None:
        return NeuroformerConfig()
    from .simulation import DEFAULT_RECORDING_SPLIT_BLOCK_LENGTH as block

    if is_main_rank():  # under torchrun every rank runs this
        print(f"[neuroformer] config: defaults, with split_block_length {block:g} s for the 140-s built-in recording "
              f"(the 30-s default would cut it into only 5 split blocks)")
    return NeuroformerConfig(split_block_length=block)


def _read_generated(path, flag: str = "--generated"):
    """A generated NWB file (``neuroformer generate --output``) as a recording, errors as :func:`_load_data`.
    Its spike times that repeat inside a unit (a unit sampled twice in one dt bin, at the bin's centre)
    are not warned of: :func:`~hf_neuroformer.io.read_nwb` knows a generated file by its writer's mark;
    another file given here is warned of as a recording is."""
    from .io import read_error, read_nwb

    if not Path(path).exists():
        raise FileNotFoundError(f"{flag}: no such file {str(path)!r}")
    if Path(path).is_dir():  # read_nwb said 'the file is not HDF5 (size 4096 bytes)' of a model folder
        model = (Path(path) / "config.json").is_file()
        raise ValueError(f"{flag}: {str(path)!r} is a directory"
                         + (" (a model directory: pass it as --model)" if model else "")
                         + "; expected the .nwb file 'neuroformer generate --output' wrote")
    try:
        return read_nwb(path)
    except (ValueError, KeyError, OSError) as err:
        raise read_error(err, flag, path) from None


def _load_model(args, *, next_spike_heads: bool = True):
    """``load_pretrained(--model)``, checked before any data is read (missing files, damaged
    weights, a fine-tuned decoder without next-spike heads: one-line errors naming --model)."""
    from .generation import load_pretrained

    return load_pretrained(args.model, next_spike_heads=next_spike_heads, flag="--model")


#: How the command line names a pretrained model's learning rate: no train flag sets it.
TRAIN_RATE_FIELD = "training.learning_rate (a --config file's training: section)"


def _config_rate_field(config_path) -> str:
    """How ``train`` and ``ablate`` name the learning rate of the ``--config`` file they read (no flag sets it)."""
    return f"training.learning_rate in --config {config_path}" if config_path else TRAIN_RATE_FIELD


def _learning_rate_option(config) -> str:
    """How the refusal of a diverged model (:func:`~hf_neuroformer.analysis._batches.check_finite_weights`)
    names the rate to lower: a fine-tuned decoder's (``config`` with decoding targets) is
    ``neuroformer finetune``'s ``--learning-rate``, a pretrained model's the ``training.learning_rate``
    field of ``neuroformer train``'s ``--config`` (the library's ``learning_rate`` is no flag)."""
    from .generation import is_decoder_config

    return "--learning-rate (neuroformer finetune)" if is_decoder_config(config) else TRAIN_RATE_FIELD


def _check_units(tokenizer, rec, args, flag: str = "--data", config=None) -> dict:
    """:func:`~hf_neuroformer.generation.check_recording_units` with the flag named; returns its
    comparison of the recording's spikes with the model's training spikes (for the output file).
    With the model's ``config``, also :func:`~hf_neuroformer.modalities.check_recording_modalities`
    (the recording holds every modality the model reads, as it reads it)."""
    from .generation import check_recording_units
    from .modalities import check_recording_modalities

    if getattr(args, flag.lstrip("-"), None) is None:
        flag += " (not given: the built-in simulated recording)"
    checked = check_recording_units(tokenizer, rec, model_dir=args.model, flag=flag)
    if config is not None:
        check_recording_modalities(config, rec, flag=flag, epoch=hasattr(args, "epoch"))
    return checked


def _check_config_modalities(config, rec, args) -> None:
    """Every modality of ``--config`` is in the recording of ``--data`` (``train``, ``ablate``),
    with a value in it: :func:`~hf_neuroformer.modalities.check_recording_modalities` with the
    config file, checked right after the recording is read and before any window.

    Raises:
        ValueError: opening with ``--data`` (and saying when it was not given).
    """
    from .modalities import check_recording_modalities

    flag = "--data" if args.data is not None else "--data (not given: the built-in simulated recording)"
    check_recording_modalities(config, rec, flag=flag, epoch=hasattr(args, "epoch"), config_file=args.config,
                               epoch_name=getattr(args, "epoch", None))


def _flag(name: str) -> str:
    """``batch_size`` -> ``--batch-size`` (errors of the library's checks name the flag)."""
    return "--" + name.replace("_", "-")


#: How the reason of a null interval names the block length to shorten, on the command line.
CI_BLOCK_S_FLAG = "--ci-block-s"


def _ci_block_s(args) -> Optional[float]:
    """``--ci-block-s`` checked (a finite number of seconds > 0, the error naming the flag), or
    None when not given (the library then uses :data:`~hf_neuroformer.metrics.bootstrap.CI_BLOCK_S`,
    10 s, and does not call it asked for: ``--ci-block-s 10`` on a trial split is told it has no
    effect, the default is not). Called before anything is read or written, and before torch or
    numpy is imported (the rule of :func:`~hf_neuroformer.metrics.bootstrap.resolve_block_s`)."""
    return None if args.ci_block_s is None else check_block_s(args.ci_block_s, CI_BLOCK_S_FLAG)


def _finetuned_block_s(model_dir) -> Optional[float]:
    """The bootstrap block length (s) ``neuroformer finetune`` gave the decoder's test intervals
    (``test/ci95_block_s`` of ``model_dir/metrics.json``), so that ``decode`` without
    ``--ci-block-s`` prints the same intervals; None when the directory has no such file or key
    (a decoder from the Hub, one fine-tuned before the key existed, a trial split)."""
    from .configuration_neuroformer import is_finite_number
    from .finetuning import saved_metric

    value = saved_metric(model_dir, "test/ci95_block_s")
    return float(value) if is_finite_number(value) and value > 0 else None


def _ci_text(metrics: dict, key: str, said: Optional[dict] = None) -> str:
    """``"  95% CI [lo, hi]"`` beside a figure whose ``<key>_ci95`` is in ``metrics``; the reason
    when that interval is None; ``""`` when there is no such key. ``said``: reason -> the figure it
    was first printed beside, for the lines of one listing: a reason already printed (the same
    ~260 characters on test/id_nll and test/dt_nll) is then referred to, not repeated."""
    if f"{key}_ci95" not in metrics:
        return ""
    ci = metrics[f"{key}_ci95"]
    if ci is None:
        reason = metrics.get(f"{key}_ci95_reason")
        if said is not None and reason in said:
            return f"  95% CI: none (as for {said[reason]})"
        if said is not None:
            said[reason] = key
        return f"  95% CI: none ({reason})"
    return f"  95% CI [{_figure(ci[0])}, {_figure(ci[1])}]"


def _missing_intervals_text(cis: dict, shown) -> str:
    """``"95% CI: none (<reason>)"`` for the figures ``shown`` (names) whose interval in ``cis``
    (:func:`~hf_neuroformer.metrics.decoding.decoding_metrics_ci`) is None, each reason once;
    with different reasons, each names its figures (``accuracy: ...; balanced_accuracy: ...``:
    joined without them, two reasons read as both applying to every figure without brackets).
    ``""`` when every shown figure has its interval."""
    by_reason: dict = {}
    for k in shown:
        if k in cis and cis[k]["interval"] is None:
            by_reason.setdefault(cis[k]["reason"], []).append(k)
    if not by_reason:
        return ""
    if len(by_reason) == 1:
        return f"95% CI: none ({next(iter(by_reason))})"
    return "95% CI: none (" + "; ".join(f"{', '.join(ks)}: {r}" for r, ks in by_reason.items()) + ")"


def _says_refusal() -> bool:
    """Whether this process prints a refusal (an error of the arguments, data or folders). Under
    torchrun every rank runs the command and reached the same refusal (an output folder that
    already holds a model, ...): it came once per process. The main rank says it; the others end
    with the same status quietly, until the processes train together (a process group exists):
    from then on a refusal may be this process's own (its share of the data), so each says it.

    Before the process group, the processes of one machine share its files and environment
    (torchrun gives them the same one but for their ranks), so they reach the same refusal; a
    process of another machine need not (``--data`` missing there, an ``--output-dir`` of its own
    disk that holds a model): it refused alone while rank 0 waited, and that machine's terminal
    showed nothing. So the first process of each machine (``LOCAL_RANK`` 0) says it too, named by
    its rank (see :func:`main`)."""
    if is_main_rank() or os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")) == "0":
        return True
    dist = sys.modules.get("torch.distributed")  # never imported: no process group either
    return bool(dist is not None and dist.is_available() and dist.is_initialized())


def _figure(v: float) -> str:
    """``v`` with 4 decimals, or 4 significant digits when it is below 0.001 in size and not 0
    (``finetune --fraction 1e-9`` was printed as ``fraction 0.0000``); -0.0 as ``0.0000``
    (:func:`~hf_neuroformer.recording.score_text`)."""
    from .recording import score_text

    return score_text(v, decimals=4, significant=4)


def _print_metrics(metrics: dict) -> None:
    said: dict = {}
    for k, v in metrics.items():
        if k.endswith("_ci95_reason"):  # printed beside its figure
            continue
        if isinstance(v, float):
            print(f"  {k:<34s} {_figure(v)}{_ci_text(metrics, k, said)}")
        elif isinstance(v, (int, str)):
            print(f"  {k:<34s} {v}")
        elif isinstance(v, list) and v and all(isinstance(x, str) for x in v):  # mixed_precision of a resumed run
            print(f"  {k:<34s} {', '.join(v)}")


#: TrainingConfig fields that a ``neuroformer train`` flag of the same name sets to its value
#: (``--max-steps`` ...); ``--activation-checkpointing`` and ``--compile`` only switch theirs on,
#: ``--no-test-generation`` only switches ``generate_test`` off.
_TRAIN_FLAG_FIELDS = ("max_steps", "max_epochs", "seed", "mixed_precision", "gradient_accumulation_steps", "batch_size",
                      "save_every", "attn_implementation")


#: The least value of each integer flag of ``neuroformer train`` (:class:`~hf_neuroformer.training.TrainingConfig`
#: refuses less, as ``training.<field>``), checked before torch is imported.
_TRAIN_FLAG_LEAST = {"max_steps": 1, "max_epochs": 1, "batch_size": 1, "gradient_accumulation_steps": 1,
                     "save_every": 1, "seed": 0}



def _load_config(path, **kwargs):
    """:func:`~hf_neuroformer.training.load_yaml_config` of ``--config``, after refusing a file that a run
    wrote: a model's ``config.json`` (``--config runs/x/config.json``, to train again with a run's
    settings) or a run's ``training_config.json`` was answered with a list of unknown fields
    (``architectures``, ``model_type``, ...; every training field) and no word on what the file is.

    Raises:
        ValueError: ``--config: ...`` naming the file, what it is and what to give instead; the
            errors of :func:`~hf_neuroformer.training.load_yaml_config` open with ``--config`` too.
    """
    from .training import load_yaml_config

    p = Path(path)
    if p.suffix.lower() == ".json" and p.is_file():
        try:
            raw = json.loads(p.read_text())
        except (OSError, ValueError):  # not JSON after all: the YAML reader says what it is
            raw = None
        if isinstance(raw, dict) and raw.get("model_type") == "neuroformer":
            raise ValueError(f"--config: {str(path)!r} is a model's config.json (model_type 'neuroformer'), not a config "
                             "file: expected a YAML file of NeuroformerConfig fields with an optional 'training:' "
                             "section, such as configs/default.yaml; to train with this model's settings, copy its "
                             "fields except architectures, dtype, model_type, transformers_version and vocab_size into "
                             "one (the run's training settings are in training_config.json beside it, to go under "
                             "'training:')")
        if isinstance(raw, dict) and p.name == "training_config.json":
            raise ValueError(f"--config: {str(path)!r} is a run's training settings (training_config.json), not a config "
                             "file: expected a YAML file of NeuroformerConfig fields with these settings under "
                             "'training:', such as configs/default.yaml")
    return load_yaml_config(path, field="--config", **kwargs)


def cmd_train(args) -> int:
    """``neuroformer train``: pretrain on --data (windows split by time blocks or trials), select on
    validation, score the test split once; writes the model, tokenizer, metrics.json, splits.json and logs
    into --output-dir. Raises ValueError / FileNotFoundError / FileExistsError naming the flag (status 2)."""
    # usage errors: before the library (torch) is imported
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite: give one of them (--overwrite starts afresh, --resume continues)")
    for name, least in _TRAIN_FLAG_LEAST.items():  # --max-steps -5 imported torch first (5-10 s)
        if getattr(args, name) is not None:
            check_whole(getattr(args, name), _flag(name), least)
    if args.seed is not None:  # Accelerate's set_seed failed on 2**32 once the recording was read
        check_training_seed(args.seed, "--seed")
    ci_block_s = _ci_block_s(args)  # before anything is read or written
    from .training import TrainingConfig, check_checkpoint_folder, check_checkpoints_not_a_file, check_output_dir, \
        check_resume, checkpoint_training_config, config_over_prepared, train, unapplied_block_s_warning

    given = ()  # the training fields that --config's training: section sets
    config_given = ()  # the model config fields that --config sets
    from_file_changed = {}  # resume: those that differ from the checkpoint's, (checkpoint, file)
    stored = None  # resume: the checkpoint's training settings
    if args.config:
        config, training, given, config_given = _load_config(args.config, training_fields=True,
                                                                 config_fields=True)
        if args.data is not None and (Path(args.data) / "manifest.json").is_file():
            # a prepared directory: the fields the file leaves out keep the directory's values, not the
            # defaults (a file of network fields only, or of a training: section only, was refused for
            # every window field it did not repeat)
            config = config_over_prepared(args.data, config, config_given)
    else:
        config, training = _default_config(args.data), TrainingConfig()
    if args.resume and not args.overwrite:
        # a resumed run keeps its own training settings; only the flags given here and the fields
        # of --config's training: section change them (left out, --max-steps fell back to 3000 and
        # --save-every to none, extending the run; and a training: section of --config was dropped
        # silently, so 'max_steps: 600' in the file did not extend a 300-step run)
        # its settings this version does not know: warned of by train, which resumes (warned here too, twice)
        stored = checkpoint_training_config(args.output_dir, warn_unknown=False)
        if stored is not None:
            from_file = {k: getattr(training, k) for k in given}
            training = dataclasses.replace(stored, **from_file)
            from_file_changed = {k: (getattr(stored, k), v) for k, v in from_file.items() if getattr(stored, k) != v}
    overrides = {name: getattr(args, name) for name in _TRAIN_FLAG_FIELDS if getattr(args, name) is not None}
    if args.activation_checkpointing:
        overrides["activation_checkpointing"] = True
    if args.compile:
        overrides["torch_compile"] = True
    if args.no_test_generation:
        overrides["generate_test"] = False
    try:
        training = dataclasses.replace(training, **overrides)
    except ValueError as err:  # "training.max_steps: expected ..." -> "--max-steps: expected ..." for a flag's value
        field = str(err).split(":", 1)[0].removeprefix("training.")
        if field not in overrides:
            raise
        flag = {"torch_compile": "--compile"}.get(field, "--" + field.replace("_", "-"))
        raise ValueError(f"{flag}:{str(err).split(':', 1)[1]}") from None
    from .training import check_precision_device

    precision_name = ("--mixed-precision" if "mixed_precision" in overrides
                      else "training.mixed_precision" + (f" (--config {args.config})" if "mixed_precision" in given
                                                         else ""))
    # fp16 on a CPU: refused now, by the flag or field that asked for it, not after the data is read
    check_precision_device(training.mixed_precision, precision_name)
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "").strip().lower()
    if (launcher in ("bf16", "fp16") and training.mixed_precision == "no"
            and ("mixed_precision" in overrides or "mixed_precision" in given)):
        # train() takes the launcher's precision over a "no" it cannot tell from the default: an explicit
        # '--mixed-precision no' under 'accelerate launch --mixed_precision bf16' (or an accelerate config
        # file's bf16) trained in bf16, where bf16 against fp16 is refused as two precisions
        raise ValueError(f"{precision_name}: 'no', but the launcher asks for {launcher!r} (accelerate launch "
                         "--mixed_precision or its config file, ACCELERATE_MIXED_PRECISION); give one precision: "
                         f"leave {precision_name.split(' ')[0]} out to train in {launcher}, or launch with "
                         "--mixed_precision no")
    from_file_changed = {k: v for k, v in from_file_changed.items() if k not in overrides}
    if training.batch_size % training.gradient_accumulation_steps:
        # refused inside train() too (times the processes there), but only once the recording was read, and as
        # 'training.batch_size' where the flags had set both numbers
        def source(field):
            if field in overrides:
                return _flag(field)
            if field in given:
                return f"training.{field} (--config {args.config})"
            return f"training.{field}" + (" (the checkpoint's)" if stored is not None else " (default)")

        raise ValueError(
            f"{source('gradient_accumulation_steps')}: {training.gradient_accumulation_steps} micro-batches do not divide "
            f"the {training.batch_size} windows of a step ({source('batch_size')}); batch_size counts the windows of "
            "one optimisation step over all micro-batches and processes: give a batch size that is a multiple of it")
    if from_file_changed and is_main_rank():  # e.g. a run started with --max-steps 6 over the file's 30, resumed without the flag
        flagged = [k for k in from_file_changed if k in _TRAIN_FLAG_FIELDS]
        hint = (f"a flag wins over the file (e.g. {_flag(flagged[0])} {from_file_changed[flagged[0]][0]!r} keeps the "
                "checkpoint's value)" if flagged else "edit the file to keep the checkpoint's values")
        print(f"[neuroformer] resume: --config {args.config} sets "
              + ", ".join(f"training.{k} {new!r} (checkpoint: {old!r})" for k, (old, new) in from_file_changed.items())
              + f"; {hint}")
    if training.attn_implementation == "flash_attention_2":
        from .training import _check_attn_implementation

        try:
            _check_attn_implementation(training.attn_implementation)  # always refuses, with the reason
        except ImportError as err:
            raise ValueError(f"--attn-implementation: {err}") from None
    # a prepared --data folder as --output-dir: "already holds a model" (its config.json, vocab.json...),
    # and with --overwrite the model's files replaced the data folder's
    _check_not_an_input(args.output_dir, "--output-dir", {"--data": args.data})
    if args.resume:  # fail (or find nothing to do) before loading anything
        # the model fields --config sets are compared with the checkpoint's even when there is nothing to do
        done = check_resume(args.output_dir, training, config if args.config else None, config_given)
        if done:
            if args.ci_block_s is not None:  # asked for, but nothing is scored
                unapplied_block_s_warning(args.output_dir, ci_block_s, CI_BLOCK_S_FLAG)
            if is_main_rank():  # under torchrun every rank finds nothing to do: one line, not one per process
                print(f"[neuroformer] {done}")
            return 0
    else:
        check_output_dir(args.output_dir, args.overwrite)  # fail before loading anything
        if args.overwrite:
            check_checkpoint_folder(args.output_dir)
    check_checkpoints_not_a_file(args.output_dir, training.save_every, args.overwrite)  # before the data is read
    if args.data is not None and (Path(args.data) / "manifest.json").is_file():
        # a 'neuroformer prepare' directory: stream its windows; its config fixes the windows
        rec = args.data
        if args.epoch is not None:
            raise ValueError("--epoch: a prepared directory already holds its windows; choose the epoch when running "
                             "'neuroformer prepare'")
        if not args.config:
            config = None
        if is_main_rank():  # under torchrun every rank runs this: one line, not one per process
            print(f"[neuroformer] data: windows streamed from the prepared directory {args.data}")
    else:
        rec = _load_data(args.data, args.epoch, no_model_command="train")
        if is_main_rank():
            print(f"[neuroformer] data: {rec}")
        if args.config:
            _check_config_modalities(config, rec, args)
    from .windows import file_identity

    weights = Path(args.output_dir) / "model.safetensors"
    before = file_identity(weights)
    # a diverged run's warnings said "lower learning_rate", which no train flag sets: the rate is the
    # training: section's (or the checkpoint's when resumed)
    metrics = train(rec, args.output_dir, config, training, overwrite=args.overwrite, resume=args.resume,
                    ci_block_s=ci_block_s, ci_block_s_option=CI_BLOCK_S_FLAG,
                    learning_rate_option=_config_rate_field(args.config), write_figures=not args.no_figures)
    if metrics:
        from .training import model_files_in

        if before is not None and file_identity(weights) == before:
            # a resumed run with no step left (max_epochs reached): train() said "nothing to do"
            # and returned the finished run's metrics; "wrote" would claim files it never touched
            print(f"[neuroformer] {args.output_dir}/ unchanged; the finished run's metrics.json:")
        else:
            print(f"[neuroformer] wrote {args.output_dir}/ ({', '.join(model_files_in(args.output_dir))})")
        _print_metrics(metrics)
    return 0


def _weights_sha256(model_dir) -> str:
    """sha256 of a model directory's ``model.safetensors`` (a copied directory has the same); of
    its shards one after the other when the weights were saved in shards
    (:func:`hf_neuroformer.generation.weight_files`). It identifies the files, so the same weights
    saved whole and in shards differ here; ``evaluate`` compares
    :func:`~hf_neuroformer.generation.tensors_sha256` where the generated file records it."""
    from .generation import weight_files
    from .windows import file_sha256

    return file_sha256(*weight_files(model_dir))


def _check_sampling_flags(args) -> None:
    """``generate``'s sampling flags, checked as :class:`~hf_neuroformer.generation.SamplingSettings`
    and :func:`~hf_neuroformer.generation.generate_spikes` check them, but named by their flags;
    before torch is imported (argparse gave numbers; their ranges need the standard library only).

    Raises:
        ValueError: ``--temperature: ...`` (``--top-p``, ``--top-k``, ``--dt-*``, ``--seed``).
    """
    try:
        check_sampling_ranges(args.temperature, args.top_k, args.top_p, args.dt_temperature, args.dt_top_k,
                              args.dt_top_p)
    except ValueError as err:
        name, _, rest = str(err).partition(":")
        raise ValueError(f"{_flag(name)}:{rest}") from None
    if not SEED_RANGE[0] <= args.seed < SEED_RANGE[1]:
        raise ValueError(f"--seed: expected an integer in [-2**63, 2**64), got {args.seed}")


def sample_output_paths(output, num_samples: int) -> list:
    """The files ``neuroformer generate --output OUTPUT --num-samples N`` writes, one per sample (an
    NWB file holds one spike train per unit): ``[OUTPUT]`` for N = 1, else
    ``<stem>-sample<r><suffix>`` beside it for r = 0 .. N-1 (``gen.nwb`` -> ``gen-sample0.nwb``, ...)."""
    out = Path(output)
    if num_samples == 1:
        return [out]
    return [out.with_name(f"{out.stem}-sample{r}{out.suffix}") for r in range(num_samples)]


#: The most windows one ``neuroformer generate`` run generates: ``--num-samples`` x the windows of
#: ``--split``. Every sample is generated in the same batches and held in memory until its file is
#: written, so a larger amount ran for hours without a line of output (``--num-samples 1000000``
#: on A2929's 160 test windows: 1.6e8 windows); generate in several runs (other ``--seed`` and
#: ``--output``) instead.
MAX_GENERATED_WINDOWS = 1_000_000


def _check_sample_outputs(output, num_samples: int, overwrite: bool, data) -> None:
    """The ``--output`` checks of ``generate --num-samples N`` for its N files
    (:func:`sample_output_paths`), done once where they are the same for every file: they share
    the folder and the suffix, so the name, suffix and writable-folder checks are made on the
    first, and only the files that already exist (one listing of the folder) are checked for
    being an input (``--data``) or needing ``--overwrite``. One check per file took minutes for
    ``--num-samples 1000000`` before anything was printed.

    Warns:
        UserWarning: files named as samples of ``--output`` (``<stem>-sample<r><suffix>``) that this run
            does not write, left by an earlier run with more ``--num-samples`` (or by one with several,
            before a run of one): they stay beside this run's files, which a reader then takes for one
            set (``gen-sample3.nwb`` and ``gen-sample4.nwb`` of a run of 5 beside the 3 of this one). They
            are named, not removed: nothing is deleted without a word.

    Raises:
        ValueError, FileExistsError, PermissionError: as :func:`_check_new_file` and
            :func:`_check_not_an_input`, naming ``--output`` and the file.
    """
    if num_samples == 1:  # --output as given: Path drops a trailing slash, so "x.nwb/" is refused as a directory
        _check_not_an_input(output, "--output", {"--data": data})  # before "exists; pass --overwrite"
        _check_new_file(output, "--output", overwrite, suffix=".nwb")
        _warn_other_samples(output, [], _listing(Path(output).parent))
        return
    from .io.output_folder import check_file_name

    check_file_name(output, "--output")  # "x.nwb/" (Path drops the slash): the sample files are named from it
    out = Path(output)
    if out.suffix.lower() != ".nwb":  # named as given: the refusal named 'noext-sample0', a file no one asked for
        raise ValueError(f"--output: this command writes NWB; expected a file name ending in .nwb, got {str(output)!r} "
                         f"(with --num-samples {num_samples}, the files are named from it: <stem>-sample<r>.nwb)")
    # the same folder and suffix for every file: one check of the name, the suffix and the folder
    _check_new_file(str(sample_output_paths(output, 2)[0]), "--output", True, suffix=".nwb")
    names = [f"{out.stem}-sample{r}{out.suffix}" for r in range(num_samples)]
    if data is not None:  # --data named as one of the files, through links or ".." in the folder
        src = Path(data).resolve()
        if src.parent == out.parent.resolve() and src.name in set(names):
            _check_not_an_input(str(out.parent / src.name), "--output", {"--data": data})
    present = _listing(out.parent)
    for name in names:  # only the files there already can be an input (a link to it) or need --overwrite
        if name in present:
            path = str(out.parent / name)
            _check_not_an_input(path, "--output", {"--data": data})
            _check_new_file(path, "--output", overwrite, suffix=".nwb")
    _warn_other_samples(output, names, present)


def _listing(folder: Path) -> set:
    """The names in ``folder`` (empty for a folder still to be made)."""
    try:
        return set(os.listdir(folder))
    except FileNotFoundError:  # a folder to be made: no file in it yet
        return set()


def _warn_other_samples(output, names: list, present: set) -> None:
    """Warn of the files in ``present`` (``--output``'s folder) named as samples of ``--output``
    (``<stem>-sample<r><suffix>``, r a whole number) that are not this run's ``names``: an earlier
    ``--num-samples 5`` left ``-sample3`` and ``-sample4`` beside the 3 files of a later
    ``--num-samples 3 --overwrite`` without a word, and a reader took the 5 for one set. Named (the
    first few, and counted), not removed."""
    out = Path(output)
    pattern = re.compile(re.escape(out.stem) + r"-sample(\d+)" + re.escape(out.suffix))
    ours = set(names)
    other = sorted((m for m in map(pattern.fullmatch, present) if m and m.group(0) not in ours),
                   key=lambda m: (int(m.group(1)), m.group(0)))
    if not other:
        return
    from .recording import count_noun, first_few

    this = (f"this run writes {len(names)} ({names[0]} .. {names[-1]})" if names
            else f"this run writes one file, {out.name}")
    one = len(other) == 1
    are, they, them = ("is", "it is", "it") if one else ("are", "they are", "them")
    warnings.warn(f"--output: {count_noun(len(other), 'file')} named as {'a sample' if one else 'samples'} of "
                  f"{str(out)!r} {are} in its folder from before and {are} not written by this run: "
                  f"{first_few([m.group(0) for m in other], 5)} ({this}); {they} left as {they}, but {are} not "
                  f"{'a sample' if one else 'samples'} of this run: delete {them}, or use another --output, before "
                  "reading the files as one set")


#: The sampling settings a ``generate --greedy`` file records as null (not used): greedy decoding takes
#: the most likely unit id and dt bin, whatever the temperatures and top-k / top-p say.
GREEDY_UNUSED_SETTINGS = ("temperature", "top_p", "top_k", "dt_temperature", "dt_top_p", "dt_top_k")


def _decoding_text(settings: dict) -> str:
    """``", greedy decoding"`` or ``", sampled"`` for evaluate's line on how a generated file was
    made, from its recorded ``greedy`` setting; ``""`` for a file that does not record it."""
    if "greedy" not in settings:
        return ""
    return ", greedy decoding" if settings["greedy"] else ", sampled"


def cmd_generate(args) -> int:
    """``neuroformer generate``: sample spike trains with a trained --model for the windows of one split of
    --data and write them (and the sampler's settings) to the .nwb --output (one per --num-samples).
    Raises ValueError / FileNotFoundError / FileExistsError naming the flag (:func:`main` prints it, status 2)."""
    # the numbers that need no library: usage errors, before torch is imported
    if args.max_spikes is not None and args.max_spikes < 1:
        raise ValueError(f"--max-spikes: expected an integer >= 1 (at most the model's max_window_length - 1), "
                         f"got {args.max_spikes}")
    if args.batch_size < 1:  # it was refused as 'batch_size:' after the model and the recording were read
        raise ValueError(f"--batch-size: expected an integer >= 1, got {args.batch_size}")
    if args.num_samples < 1:
        raise ValueError(f"--num-samples: expected an integer >= 1, got {args.num_samples}")
    if args.greedy and args.num_samples > 1:  # greedy decoding draws nothing: every sample is the same spikes
        raise ValueError(f"--num-samples: greedy decoding (--greedy) gives the same spikes in every sample, so "
                         f"--num-samples {args.num_samples} would write {args.num_samples} identical files; "
                         "drop --greedy to sample, or --num-samples")
    if args.num_samples > MAX_GENERATED_WINDOWS:  # every split has a window: refused before anything is read
        raise ValueError(f"--num-samples: {args.num_samples} samples of at least one window each is more than "
                         f"{MAX_GENERATED_WINDOWS} windows, the most one run generates (every sample is held in "
                         "memory until written); generate in several runs with other --seed and --output")
    _check_sampling_flags(args)  # named by their flags (--top-p 7 imported torch first, 5-10 s)
    from .generation import generate_split, generation_windows, grid_scratch, settings_scratch, source_scratch
    from .io import write_nwb
    from .modalities import truncated_tokens_text

    # one file per sample (an NWB file holds one spike train per unit): --output itself, or with
    # --num-samples N > 1 <stem>-sample<r>.nwb beside it, r = 0 .. N-1; checked before loading anything
    # (--output as given for one sample: Path drops a trailing slash, so "x.nwb/" is refused as a directory)
    _check_sample_outputs(args.output, args.num_samples, args.overwrite, args.data)
    from .windows import check_split_in_recording

    model, tokenizer, plan = _load_model(args)
    # overlapping trials: generation_windows warns of the windows left out. Computed once (counted here,
    # then generated) and its warning held: shown before a refusal, which ended unwarned, or where the run
    # goes on, just before generating (where generate_split warned when it tiled the split again)
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        windows = generation_windows(plan, args.split, model.config)
    n_windows = len(windows[0])

    def show_held():
        for w in held:  # under the caller's filters (-W ignore still silences it)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    total = n_windows * args.num_samples
    if total > MAX_GENERATED_WINDOWS:  # before the recording is read: 10^6 samples ran for hours unannounced
        show_held()
        raise ValueError(f"--num-samples: {args.num_samples} samples of the {n_windows} {args.split} windows are "
                         f"{total} windows, more than {MAX_GENERATED_WINDOWS}, the most one run generates (every "
                         f"sample is held in memory until written); pass --num-samples "
                         f"{max(1, MAX_GENERATED_WINDOWS // max(n_windows, 1))} or fewer per run, with other --seed "
                         "and --output")
    from .generation import check_generation_batch_memory

    # before the recording is read: --batch-size 100000 --num-samples 1000 was killed by the OS for lack of memory.
    # Charged pasts of BOS alone here, the least any recording gives (what this refuses no recording fits); the
    # pasts' real length is charged once the recording is read, below (full pasts refused a model with a long
    # max_past_length whatever the recording)
    param = next(model.parameters())
    try:
        check_generation_batch_memory(model.config, args.batch_size, total, element_size=param.element_size(),
                                      device=param.device, flag="--batch-size", past_length=1)
    except ValueError:
        show_held()
        raise
    outputs = sample_output_paths(args.output, args.num_samples)
    from .recording import count_noun

    print(f"[neuroformer] generating {count_noun(args.num_samples, 'sample')} of the "
          f"{count_noun(n_windows, f'{args.split} window')} ({count_noun(total, 'window')})")
    from .analysis._batches import check_finite_weights

    # a diverged run's NaN weights failed inside torch.multinomial, with a traceback
    check_finite_weights(model, args.model, gives="every spike probability it gives",
                         learning_rate_option=_learning_rate_option(model.config))
    if args.data is None:  # before the ~20 s of simulating the built-in recording
        _refuse_builtin_units(tokenizer, args.model, what="model", trained="trained", verb="generated from")
    rec = _load_data(args.data, args.epoch)
    _check_units(tokenizer, rec, args, config=model.config)
    check_split_in_recording(plan, args.split, rec, flag="--data")  # named 'recording ... (and epoch)'
    show_held()
    from .generation import longest_generation_past

    # the batch with the longest past these windows can have (generate_spikes checks the same, naming batch_size)
    check_generation_batch_memory(
        model.config, args.batch_size, total, element_size=param.element_size(), device=param.device,
        flag="--batch-size", past_length=longest_generation_past(
            tokenizer, rec, windows[0], windows[1] if plan.mode == "trials" else None, mode=args.mode,
            max_spikes=args.max_spikes))
    generated = generate_split(
        model, tokenizer, rec, plan, args.split, windows=windows, mode=args.mode, order=args.order, batch_size=args.batch_size,
        seed=args.seed, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
        dt_temperature=args.dt_temperature, dt_top_p=args.dt_top_p, dt_top_k=args.dt_top_k,
        max_spikes=args.max_spikes, greedy=args.greedy, num_samples=args.num_samples,
        warn_absent_units=False,  # _check_units warned
    )
    samples = generated if isinstance(generated, list) else [generated]
    # for evaluate: the grid (ISI floor), which recorded spikes these windows came from, and how.
    # The settings used, not the flags: an unset --dt-* (the unit-id head's value) or --max-spikes
    # (max_window_length - 1) was recorded as null, which reads as "off" / "no cap"
    from .generation import SamplingSettings, max_spikes_limit

    dt_temperature, dt_top_k, dt_top_p = SamplingSettings(
        args.temperature, args.top_k, args.top_p, args.dt_temperature, args.dt_top_k, args.dt_top_p).for_head("dt")
    from .generation import tensors_sha256

    # the files' digest, and the tensors' (the same weights saved whole or in shards, as push uploads them)
    settings = {"model": str(Path(args.model).resolve()), "model_weights_sha256": _weights_sha256(args.model),
                "model_tensors_sha256": tensors_sha256(args.model),
                "split": args.split, "mode": args.mode,
                "order": args.order, "seed": args.seed,
                "temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k,
                "dt_temperature": dt_temperature, "dt_top_p": dt_top_p, "dt_top_k": dt_top_k,
                "max_spikes": max_spikes_limit(model.config) if args.max_spikes is None else args.max_spikes,
                # the seed's draws are shared by the rows of a batch, so the same seed with another
                # --batch-size gives other spikes: without it the record did not say how to reproduce them
                "batch_size": args.batch_size,
                "greedy": args.greedy, "num_samples": args.num_samples}
    if args.greedy:  # argmax of both heads: the temperatures and top-k / top-p were recorded as if they had been used
        settings.update(dict.fromkeys(GREEDY_UNUSED_SETTINGS))
    for r, (generated, out) in enumerate(zip(samples, outputs)):
        # a result, not a setting, but evaluate needs it: windows cut at the cap bias every metric low
        st = generated.generation_stats
        counts = {"n_capped_windows": int(st["n_capped_windows"]), "n_windows": int(st["n_windows"])}
        write_nwb(generated, out, overwrite=args.overwrite, make_parent=True,  # _check_sample_outputs vetted it
                  scratch={**grid_scratch(model.config), **source_scratch(rec, generated.support),
                           **settings_scratch({**settings, **counts, **({"sample": r} if len(samples) > 1 else {})})})
        what = f"sample {r} of {len(samples)}: " if len(samples) > 1 else ""
        windows = count_noun(st["n_windows"], f"{args.split} window")
        print(f"[neuroformer] {what}generated {count_noun(generated.n_spikes, 'spike')} in {windows} "
              f"({generated.duration:.1f} s, {args.mode.replace('_', '-')} past, "
              f"{'greedy decoding' if args.greedy else 'sampled'} at {st['spikes_per_second']:.0f} "
              "generated spikes per second of compute; "
              f"{count_noun(st['n_capped_windows'], 'window')} cut by the spike cap); wrote {out}")
    st = samples[0].generation_stats  # the past and modality counts below are the same in every sample
    # the past spikes dropped to fit max_past_length were counted in generation_stats and never printed: the
    # windows were generated from shortened pasts without a word (train and prepare print the same count)
    n_past_cut = sum(st["n_past_truncated"])
    if n_past_cut and model.config.max_past_length == 1:  # by design (ablate's state-only variant)
        from .training import no_past_note

        print(no_past_note(n_past_cut))
    elif n_past_cut:
        print(f"[neuroformer] {n_past_cut} past-window spikes left out (the oldest) in "
              f"{sum(k > 0 for k in st['n_past_truncated'])} "
              f"of the {st['n_windows']} windows, whose past windows are longer than max_past_length="
              f"{model.config.max_past_length} tokens; those windows were generated from their latest past spikes only")
    for name, k in st.get("n_windows_without_modality_tokens", {}).items():
        if k:  # as train prints it per split: these windows were generated without their input
            print(f"[neuroformer] modality {name!r}: {k} of the {st['n_windows']} windows have no value in their "
                  "modality window (NaN, a gap, or a series that starts later), so they were generated from the "
                  "model's learned null token, not conditioned on it")
    for name, k in st.get("n_truncated_modality_tokens", {}).items():
        if k:  # as train prints it: the windows read only the latest tokens (frames) of the modality
            mod = model.config.modality(name)
            print(f"[neuroformer] modality {name!r}: {k} {truncated_tokens_text(mod)} dropped (earliest first) over the "
                  f"{st['n_windows']} windows")
    for name, k in st.get("n_events_in_no_window", {}).items():
        if k:  # as train prints it: no generated window was conditioned on these events
            print(f"[neuroformer] modality {name!r}: {k} events in the {args.split} split's segments lie in no "
                  "generated window's modality window (a trial's end shorter than a window, a window left out for "
                  "overlapping another): no generated window was conditioned on them")
    return 0




#: The figures ``neuroformer evaluate`` prints: (JSON key, what it is, and for a score its best value:
#: the table gave no direction, and a reader could not tell that a lower KS or |log2 ratio| is better, or
#: that a rate ratio is best at 1, not high).
MAIN_FIDELITY_METRICS = (
    ("rate_corr", "Pearson r of firing rates over units; best 1"),
    ("rate_ratio_median", "median generated/recorded rate ratio; best 1"),
    ("rate_log2_ratio_mean_abs", "mean |log2 rate ratio| (units active in both); best 0"),
    ("binned_count_corr_mean", "mean per-unit r of binned counts; best 1"),
    ("psth_corr_mean", "mean per-unit r of trial-averaged PSTHs; best 1"),
    ("isi_ks_mean", "mean per-unit KS statistic of ISIs; lower better (0 out of reach: see the floor)"),
    ("isi_ks_floor_mean", "floor: same KS, recorded vs recorded moved to dt-bin centres"),
    ("fano_corr", "r of per-unit Fano factors; best 1"),
    ("fano_mean_abs_diff", "mean |Fano generated - recorded|; best 0"),
    ("pairwise_corr_r", "r of pairwise count correlations; best 1"),
    ("id_f1", "unit-id F1 per window; best 1"),
    ("n_real_spikes", "recorded spikes in the generated windows"),
    ("n_generated_spikes", "generated spikes"),
    ("support_duration_s", "length of the generated windows, s"),
)


#: The evaluate metrics computed on --bin-size bins (the Fano factor unless trial-aligned).
BINNED_METRICS = ("binned_count_corr_mean", "fano_corr", "fano_mean_abs_diff", "pairwise_corr_r")


def _print_fidelity(metrics: dict) -> None:
    for key, what in MAIN_FIDELITY_METRICS:
        v = metrics.get(key)
        text = f"{v:.4f}" if isinstance(v, float) else str(v)
        print(f"  {key:<26s} {text:>10s}   {what}")
        if key == "id_f1":
            _print_timing_f1(metrics)
    for key in ("rate_corr", "binned_count_corr_mean", "isi_ks_mean", "fano_corr", "pairwise_corr_r", "id_f1"):
        if metrics.get(f"{key}_reason"):
            print(f"  ({key} is NaN: {metrics[key + '_reason']})")
    if metrics.get("psth_reason"):
        print(f"  (psth_corr_mean is NaN: {metrics['psth_reason']})")
    if metrics.get("isi_ks_floor_reason"):
        print(f"  (isi_ks_floor_mean is NaN: {metrics['isi_ks_floor_reason']})")
    elif metrics.get("isi_ks_floor_source"):
        print(f"  (isi_ks_floor: {metrics['isi_ks_floor_dt_resolution_s']} s dt bins, grid from "
              f"{metrics['isi_ks_floor_source']})")


def _print_timing_f1(metrics: dict) -> None:
    """One line per tolerance of the spike-timing F1 (:func:`~hf_neuroformer.metrics.spike_timing_f1`),
    with its two chance levels beside it (± the SD of one draw's level over the draws): an F1 alone
    does not say whether rates explain it."""
    import math

    for tol in metrics.get("timing_tolerances_s") or ():
        lab = tolerance_label(tol)
        key = f"timing_f1_{lab}"
        levels = []
        for what, kind in (("Poisson", "poisson"), ("window shuffle", "shuffle")):
            sd = metrics.get(f"{key}_chance_{kind}_sd")
            levels.append(f"{what} {metrics.get(f'{key}_chance_{kind}'):.4f}"
                          + (f" ± {sd:.4f}" if isinstance(sd, float) and math.isfinite(sd) else ""))
        draws = metrics.get("timing_chance_draws")
        print(f"  {key:<26s} {metrics.get(key):>10.4f}   spike-timing F1, same unit within {tol * 1e3:g} ms; best 1, chance: "
              f"{', '.join(levels)} ({draws} draw{'s' if draws != 1 else ', no SD'})")
        if metrics.get(f"{key}_reason"):
            print(f"  ({key} is NaN: {metrics[key + '_reason']})")


def _timing_tolerances(text: Optional[str]) -> Optional[tuple]:
    """The seconds of ``evaluate --timing-tolerances`` (``"0.005,0.01"``), None when not given (the
    library's default), or a ValueError naming the flag (an empty item, a non-number, a value below
    0.0001 s or of 1 s or more, a repeat). The standard library only: checked before torch is imported."""
    if text is None:
        return None
    values = []
    for item in _comma_items(text, "--timing-tolerances", "tolerances in seconds", "0.005,0.01,0.025"):
        try:
            values.append(float(item))
        except ValueError:
            raise ValueError(f"--timing-tolerances: expected numbers of seconds separated by commas, such as "
                             f"0.005,0.01,0.025, got {item!r} in {text!r}") from None
    return check_spike_tolerances(values, "--timing-tolerances")


def _warn_unreachable_timing(tolerances, grid, source, given: bool = True) -> None:
    """Warn about spike-timing tolerances below half the generator's dt bin (``grid``:
    ``(current_window, dt_resolution)`` or None): generated spikes sit at dt-bin centres, so there even
    a model that put every recorded spike in its right bin misses the spikes far from their bin's
    centre, and the F1 was read against 1. ``given``: the user passed ``--timing-tolerances``; if not,
    the warning says the tolerances are its default (it read as if the user had passed 0.005)."""
    from .metrics.fidelity import EDGE_TOLERANCE

    if grid is None:
        return
    dt = grid[1]
    low = [t for t in tolerances if t < dt / 2 - EDGE_TOLERANCE]
    if low:
        flag = "--timing-tolerances" if given else (
            f"--timing-tolerances (not given: the default {','.join(f'{t:g}' for t in tolerances)} s)")
        warnings.warn(f"{flag}: {', '.join(f'{t:g}' for t in low)} s is less than half the generator's dt "
                      f"bin ({dt:g} s, from {source}); generated spikes sit at dt-bin centres, so there even a model "
                      "that put every recorded spike in its right bin misses the recorded spikes far from their bin's "
                      f"centre (its timing F1 is below 1); pass tolerances of at least {dt / 2:g} s", UserWarning,
                      stacklevel=3)


def _check_new_file(path, flag: str, overwrite: bool, suffix: Optional[str] = None) -> None:
    """Refuse an output file path that exists (without ``--overwrite``) or is a directory (always),
    and with ``suffix`` (e.g. ``".nwb"``) one whose name ends otherwise (``simulate --output x.txt``
    wrote an NWB file under a name that other tools would misread)."""
    if path is None:
        return
    from .io.output_folder import check_file_name

    check_file_name(path, flag)  # Path() drops the slash: "x.nwb/" wrote a file x.nwb
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag}: {str(path)!r} is a directory; expected a file name")
    if suffix is not None and path.suffix.lower() != suffix:
        raise ValueError(f"{flag}: this command writes {suffix.lstrip('.').upper()}; expected a file name ending in "
                         f"{suffix}, got {str(path)!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{flag}: {str(path)!r} exists; pass --overwrite to replace it")
    from .io.output_folder import check_writable_parent

    check_writable_parent(path, flag)  # under a file or a read-only folder: it failed after all the work


def _check_figure_file(path, flag: str) -> None:
    """Refuse a figure file name whose suffix is not a format matplotlib writes (``.png``,
    ``.pdf``, ``.svg``, ...), before any work: the figure is written last, so ``--figure x.json``
    failed with matplotlib's "Format 'json' is not supported" (no flag named) after the metrics
    were computed and the other outputs written. ``.pgf`` is refused where matplotlib's TeX program
    (``rcParams["pgf.texsystem"]``, xelatex) is not installed: matplotlib lists the format, but
    writing it failed at the end, after ``decode`` had written its CSV."""
    import shutil

    from matplotlib import rcParams
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in formats:
        raise ValueError(f"{flag}: expected a figure file name ending in an image format matplotlib writes "
                         f"(.png, .pdf, .svg, ...: {', '.join(sorted(formats))}), got {str(path)!r}")
    if fmt == "pgf" and shutil.which(rcParams["pgf.texsystem"]) is None:
        raise ValueError(f"{flag}: {str(path)!r}: matplotlib writes .pgf through {rcParams['pgf.texsystem']}, which is "
                         "not installed here; expected another figure format (.pdf, .svg, .png, ...)")


def _check_not_an_input(path, flag: str, inputs: dict) -> None:
    """Refuse an output path that is one of the files the command reads (``inputs``: flag ->
    path or None), with or without ``--overwrite``: ``generate --data X.nwb --output X.nwb
    --overwrite`` replaced the recording with the generated spikes. Paths are compared after
    resolving links and ``..`` (and as the same file on disk when both exist)."""
    if path is None:
        return
    out = Path(path)
    for name, src in inputs.items():
        if src is None:
            continue
        src = Path(src)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            same = os.path.samefile(out, src)
        if same:
            what = "folder" if src.is_dir() else "file"
            raise ValueError(f"{flag}: {str(path)!r} is {name} {str(src)!r}, the {what} this command reads; "
                             f"--overwrite replaces old outputs, never an input: pass another {what} name")


def _check_not_a_model_file(path, flag: str, model_dir, what: str = "the --model directory", note: str = "") -> None:
    """Refuse an output path that is one of the files of the ``--model`` directory the command
    reads (its config, weights, tokenizer, run records and figures), with or without
    ``--overwrite``: ``evaluate --model runs/a --output runs/a/config.json --overwrite`` (or
    ``embed`` / ``attention-map --output runs/a/config.png``, whose JSON goes to
    ``runs/a/config.json``) replaced the model's config with the metrics, and the model then
    failed to load with a message about its weights. Other names inside the directory
    (``runs/a/eval.json``) stay allowed. ``what`` names the directory in the message and ``note``
    follows its path (evaluate without ``--model``: the model directory the ``--generated`` file
    records)."""
    if path is None or model_dir is None:
        return
    from .generation import MODEL_DIR_FILES
    from .training import MODEL_FILES, RUN_FIGURES, RUN_TABLES

    out = Path(path)
    names = {*MODEL_DIR_FILES, *MODEL_FILES, *RUN_FIGURES, *RUN_TABLES, "generation_config.json",
             "decoding_report.json"}
    folder = Path(model_dir).resolve()
    # outputs are written through a link (jsonio.write_atomic): elsewhere/eval.json linked to the
    # model's config.json passed a check of the name given alone
    target = out.resolve() if out.is_symlink() else out
    # names compared without case: on a case-insensitive file system (macOS, Windows) runs/a/Config.json is
    # runs/a/config.json, and the atomic rename of the output replaced the model's config
    lower = {n.lower(): n for n in names}
    for p, link in ((out, ""), (target, "a link to ")):
        if p.name.lower() in lower and p.parent.resolve() == folder:
            same = "" if p.name in names else f" (the name of {lower[p.name.lower()]} on a case-insensitive file system)"
            raise ValueError(f"{flag}: {str(path)!r} is {link}{p.name}{same} of {what} {str(model_dir)!r}{note}; "
                             "--overwrite replaces old outputs, never a file of the model: pass another file name")


def _check_not_a_file_of_its_model_folder(path, flag: str) -> None:
    """For a command that reads no ``--model`` (ablate, inspect): refuse an output path that is a
    file of the model directory it lies in, a folder holding ``config.json`` and weights
    (``model.safetensors``, or the index of sharded weights), as :func:`_check_not_a_model_file`
    does for ``--model``; the folder of a link's target too (outputs are written through the link)."""
    from .generation import SHARDED_WEIGHTS_INDEX as sharded_index

    out = Path(path)
    for folder in {out.parent, (out.resolve() if out.is_symlink() else out).parent}:
        if (folder / "config.json").is_file() and any((folder / w).is_file() for w in ("model.safetensors",
                                                                                     sharded_index)):
            _check_not_a_model_file(path, flag, folder, what="the model directory")


def _bits_per_spike_keys(bps: dict, split: str) -> dict:
    """``split_bits_per_spike`` output -> evaluate JSON keys, its counts prefixed.

    Its ``n_windows`` / ``n_spikes`` count the model's ``split`` windows, not the generated
    windows that the fidelity metrics' ``n_windows`` counts, so they get a ``bits_per_spike_``
    prefix (and the scored split is recorded) instead of overwriting the fidelity counts. Keys
    that already name bits per spike (``bits_per_spike``, ``bits_per_spike_scored_rates_null``)
    and the log-likelihood sums (``..._nats``) keep their names.
    """
    out = {"bits_per_spike_split": split}
    for k, v in bps.items():
        keep = k.startswith("bits_per_spike") or k.endswith("_nats")
        out[k if keep else f"bits_per_spike_{k}"] = v
    return out


def _print_bits_per_spike(bps: dict, model, split: str) -> None:
    """The two bits-per-spike figures of :func:`~hf_neuroformer.likelihood.split_bits_per_spike`,
    each labelled with the null it is measured against."""
    held_out = "held-out " if split != "train" else ""
    said: dict = {}
    from .recording import count_noun

    print(f"[neuroformer] {held_out}bits/spike of {model} on its {split} windows, forward prediction "
          f"({count_noun(bps['n_spikes'], 'spike')}, {count_noun(bps['n_windows'], 'window')}, "
          f"{bps['n_windows_truncated']} truncated left out):")
    # which way is better, once: 0 is the null's own figure, not the worst (a model can score below it)
    print("  (higher is better; 0: no better than the null, below 0: worse)")
    print(f"  {'bits_per_spike':<34s} {bps['bits_per_spike']:>8.4f}   vs Poisson units at their train-split rates"
          f"{_ci_text(bps, 'bits_per_spike', said)}")
    print(f"  {'bits_per_spike_scored_rates_null':<34s} {bps['bits_per_spike_scored_rates_null']:>8.4f}   "
          f"vs Poisson units at their rates in these {split} windows (nlb_tools' null)"
          f"{_ci_text(bps, 'bits_per_spike_scored_rates_null', said)}")
    if "ci95_n_blocks" in bps:
        print(f"  (95% CI: block bootstrap over {bps['ci95_n_blocks']} blocks, {bps['ci95_blocks']})")
    silent = bps.get("units_silent_in_fit_split") or []
    if silent:  # their train rate is 0: the null gives them a floor instead, which prices their spikes here
        fire = "fires" if len(silent) == 1 else "fire"
        print(f"  note: {count_noun(len(silent), 'unit')} {fire} no spike in the train windows (units {silent[:20]}"
              f"{' ...' if len(silent) > 20 else ''}): the train-rate null gives each half a spike over them "
              f"({bps['silent_unit_null_rate_hz']:.4g} Hz), not 0, so that their "
              f"{count_noun(bps['n_spikes_of_units_silent_in_fit_split'], 'spike')} in these {split} windows are "
              f"possible under it; bits_per_spike depends on that floor, "
              "bits_per_spike_scored_rates_null does not")


def _generator_grid(scratch, model):
    """``((current_window, dt_resolution), source)`` of the grid the generated spikes lie on, for
    the ISI KS floor: from the generated file's ``scratch`` (written there by ``neuroformer
    generate``), else from the ``--model`` config; ``(None, None)`` when neither is available
    (the output says so)."""
    from .generation import read_grid_scratch

    grid = read_grid_scratch(scratch)
    if grid is not None:
        return grid, "the generated file"
    if model is not None:
        return (float(model.config.current_window), float(model.config.dt_resolution)), "--model's config"
    return None, None


def _unit_list_difference(real, generated) -> str:
    """Where the unit names of ``real`` (``--real``) and ``generated`` (``--generated``) differ, in
    words: the names only one holds (the first few), or the first position where the same names
    come in another order."""
    from .recording import first_few

    r, g = list(real.unit_names), list(generated.unit_names)
    head = (f"--real has {len(r)} units (session {real.session!r}), --generated {len(g)} "
            f"(session {generated.session!r})")
    only_g, only_r = [x for x in g if x not in set(r)], [x for x in r if x not in set(g)]
    if not only_g and not only_r and len(r) == len(g):
        i = next(k for k, (a, b) in enumerate(zip(r, g)) if a != b)
        return f"{head}: the same names in another order, unit {i} is {r[i]!r} in --real and {g[i]!r} in --generated"
    # '1 generated units are not in --real': the verb follows the count
    parts = [(f"{len(only_g)} generated unit{'s are' if len(only_g) > 1 else ' is'} not in --real "
              f"({first_few(only_g, count_rest=False)})") if only_g else "",
             (f"{len(only_r)} unit{'s' if len(only_r) > 1 else ''} of --real {'are' if len(only_r) > 1 else 'is'} not "
              f"in --generated ({first_few(only_r, count_rest=False)})") if only_r else ""]
    return head + ": " + "; ".join(p for p in parts if p)


def cmd_evaluate(args) -> int:
    """``neuroformer evaluate``: fidelity metrics of --generated against --real over the generated windows
    (and with --model the held-out bits per spike); prints the main ones, writes all as JSON to --output
    and rasters / PSTHs to --figure. Raises ValueError / FileNotFoundError / FileExistsError naming the flag."""
    import math

    # flags that only go with --model: usage errors, before the library (torch) is imported
    if args.ci_block_s is not None and not args.model:
        raise ValueError("--ci-block-s: only with --model: it sets the bootstrap blocks of the intervals of the "
                         "model's bits per spike, and without --model there are no intervals (the fidelity "
                         "metrics compare two recordings); pass --model, or leave out --ci-block-s")
    if args.split is not None and not args.model:
        # it was ignored without a word: the metrics were those of the windows the file holds
        raise ValueError(f"--split: only with --model: it picks the windows whose bits per spike the model scores; "
                         "without --model the metrics compare the windows --generated holds (the split it was "
                         f"generated from), whatever --split says; to compare the {args.split} windows, generate "
                         f"them (neuroformer generate --split {args.split}), or pass --model")
    # the numbers first, before torch is imported: they were refused only after both recordings (and the model)
    # were read ('min_isis:' is named --min-isis by main, as every field that has a flag)
    ci_block_s = _ci_block_s(args)
    chosen = {"--bin-size": args.bin_size is not None, "--psth-bin-size": args.psth_bin_size is not None,
              "--min-trial-coverage": args.min_trial_coverage is not None}
    args.bin_size = 0.1 if args.bin_size is None else args.bin_size
    args.psth_bin_size = 0.01 if args.psth_bin_size is None else args.psth_bin_size
    check_bin_size(args.bin_size, "--bin-size")
    check_bin_size(args.psth_bin_size, "--psth-bin-size")
    check_min_isis(args.min_isis)
    args.min_trial_coverage = check_min_coverage(0.95 if args.min_trial_coverage is None else args.min_trial_coverage,
                                                 "--min-trial-coverage")
    timing_tolerances = _timing_tolerances(args.timing_tolerances)  # 5,10,25 (ms for s) was scored at 5, 10, 25 s
    if args.timing_chance_draws is not None:
        check_whole(args.timing_chance_draws, "--timing-chance-draws", 1)
    from .generation import read_settings_scratch, source_matches
    from .io import read_nwb_scratch
    from .io.output_folder import check_file_name
    from .jsonio import write_json
    from .metrics import compare_recordings

    if args.no_figures and args.figure:  # one of them would be ignored: a usage error, before anything is read
        raise ValueError(f"--no-figures: given with --figure {args.figure!r}, which asks for the figure; give one of "
                         "them (--no-figures leaves out only the default figure, --output's name with .png)")
    check_file_name(args.output, "--output")  # as a Path, "x.json/" lost its slash and x.json was written
    check_file_name(args.figure, "--figure")
    out = Path(args.output) if args.output else None
    if args.figure:
        figure = Path(args.figure)
    elif out is not None and not args.no_figures:
        figure = out.with_suffix(".png")
    else:
        figure = None
    # a refusal of the default figure names where it came from: '--figure: M/training_curves.png is ...' blamed a
    # flag the user never gave ('evaluate --output M/training_curves.json')
    fig_flag = "--figure" if args.figure else "--figure (default: --output with .png)"
    from .metrics.fidelity import (MIN_CORR_POINTS, SPIKE_TIMING_CHANCE_DRAWS, SPIKE_TIMING_TOLERANCES,
                                   bins_fit_problem, check_bins_fit, support_segments, width_at_most)

    if timing_tolerances is None:
        timing_tolerances = SPIKE_TIMING_TOLERANCES
    timing_chance_draws = SPIKE_TIMING_CHANCE_DRAWS if args.timing_chance_draws is None else args.timing_chance_draws
    if out is not None and figure is not None and out.resolve() == figure.resolve():
        if not args.figure:  # the user named no figure: the default one (--output with .png) is the JSON itself
            raise ValueError(f"--output: {str(out)!r} is the metrics JSON, and the figure goes to --output with .png, "
                             "the same file; name the JSON with .json (e.g. eval.json), or pass --figure")
        raise ValueError(f"--figure: {str(figure)!r} is also the --output JSON file; pass another --figure path")
    for path, flag in ((out, "--output"), (figure, fig_flag)):  # before "exists; pass --overwrite"
        _check_not_an_input(path, flag, {"--generated": args.generated, "--real": args.real})
        _check_not_a_model_file(path, flag, args.model)
    # a JSON file, as inspect --output: '--output gen2.nwb --overwrite' wrote the metrics over a generated file
    _check_new_file(out, "--output", args.overwrite, suffix=".json")  # fail before loading anything
    _check_new_file(figure, fig_flag, args.overwrite)
    if figure is not None:
        _check_figure_file(figure, fig_flag)
    elif args.no_figures and out is not None and out.with_suffix(".png").is_file():
        # 'evaluate --output eval.json --overwrite --no-figures' after a run with the figure replaced eval.json and
        # left the earlier eval.png beside it, of other metrics, without a word
        warnings.warn(f"--no-figures: {str(out.with_suffix('.png'))!r} (--output's figure name) is there from before "
                      "and is left as it is: it is not a figure of this evaluation; delete it, or leave out "
                      "--no-figures to draw it again")
    # the model first: a directory that cannot score spikes fails before the metrics are computed
    model, tokenizer, plan = _load_model(args) if args.model else (None, None, None)
    if model is not None:
        from .analysis._batches import check_finite_weights

        # a diverged run's NaN log-likelihoods were blamed on truncated windows, after the fidelity metrics
        check_finite_weights(model, args.model, gives="its log-likelihoods (bits per spike)",
                             learning_rate_option=_learning_rate_option(model.config))
    generated = _read_generated(args.generated)  # one file, quicker to refuse than the real recording
    # the model that generated the file before the recording is read: 'evaluate --generated runs/q/gen.nwb --model
    # runs/other' blamed --real ('this recording's units are not the ones the model ... was trained on: pass the
    # recording it was trained on') when the recording was right and --model was the wrong one
    scratch = read_nwb_scratch(args.generated)  # what generate recorded: grid, source spikes, settings
    settings = read_settings_scratch(scratch)
    if not args.model and settings is not None and settings.get("model"):
        # without --model, the model that generated the file is still the one whose files an output
        # must not replace ('evaluate --generated g.nwb --output runs/a/config.json --overwrite', the
        # README's form without --model, wrote the metrics over the model's config)
        for path, flag in ((out, "--output"), (figure, fig_flag)):
            _check_not_a_model_file(path, flag, settings["model"], "the model directory",
                                    f" (it generated {args.generated}, as the file records)")
    if args.split is None:  # the generated file's split: bits per spike on the windows that were generated
        args.split = settings["split"] if settings is not None else "test"
        if args.model:
            print(f"[neuroformer] --split not given: scoring the {args.split!r} split "
                  + (f"(the split {args.generated} was generated from)" if settings is not None else
                     f"(the default; {args.generated} does not record the split it was generated from)"))
    if args.model and settings is not None:
        # bits per spike of one model (and split) printed above the fidelity of another's samples
        # by their tensors where the file records them (a folder saved in shards and its pushed, whole
        # model.safetensors hold the same weights in files of other bytes); else by the files
        from .generation import tensors_sha256

        other = (tensors_sha256(args.model) != settings["model_tensors_sha256"] if settings.get("model_tensors_sha256")
                 else _weights_sha256(args.model) != settings.get("model_weights_sha256"))
        mixed = [f"--model {str(Path(args.model).resolve())!r} has other weights than {settings['model']!r}"
                 if other else None,
                 f"--split {args.split!r} vs {settings['split']!r}" if args.split != settings["split"] else None]
        mixed = [m for m in mixed if m]
        if mixed:
            raise ValueError(f"--model/--split: {args.generated} was generated by another model or split than "
                             f"--model / --split name ({'; '.join(mixed)}), so bits per spike and the fidelity "
                             "metrics would describe different things; pass the --model and --split it was "
                             "generated with, or leave out --model")
    real = _load_data(args.real, args.epoch, flag="--real")
    if args.real is not None and Path(args.real).resolve() == Path(args.generated).resolve():
        # every correlation and F1 came out 1 and every KS distance 0, without a word
        warnings.warn(f"--generated and --real are the same file ({args.generated}): every metric compares the "
                      "recording with itself (perfect scores); pass the file 'neuroformer generate --output' wrote as "
                      "--generated", UserWarning, stacklevel=2)
    spikes_check = _check_units(tokenizer, real, args, flag="--real", config=model.config) if args.model else None
    if args.model:
        from .windows import check_split_in_recording

        # bits per spike scores the --split windows against a Poisson null fitted on the train windows: a --real
        # that does not cover them was refused after the fidelity metrics, naming 'recording:' for --real
        for split in dict.fromkeys((args.split, "train")):
            check_split_in_recording(plan, split, real, flag="--real")
    grid, source = _generator_grid(scratch, model)
    if args.real is None and list(real.unit_names) != list(generated.unit_names):
        # the pair check below would only say the unit lists differ; where they differ is said too (with as
        # many units as the built-in recording it read "(16 units) was used, but ... has 16 units")
        raise ValueError(f"--real: not given, so the built-in simulated recording ({real.n_units} units) was used, but "
                         f"its units are not those of --generated {args.generated} "
                         f"({_unit_list_difference(real, generated)}); pass the recording it was generated from as "
                         "--real (and its --epoch)")
    if list(real.unit_names) != list(generated.unit_names):
        # compare_recordings refused them as 'generated.unit_names: expected the real recording's 15 units
        # (['unit0', 'unit1', 'unit2']...), got 16 (['unit0', 'unit1', 'unit2']...)', naming no flag and
        # showing the same names on both sides
        # a recording of another session said only which units differ: the sessions, when they differ, come first
        # (generate names its session '<session>-generated', with '-sample<r>' for one of several samples)
        source = re.sub(r"-generated(-sample\d+)?$", "", generated.session)
        sessions = (f"a recording of session {real.session!r}, but --generated {args.generated} was generated from "
                    f"session {source!r}; " if real.session != source else "")
        raise ValueError(f"--real: {sessions}its units are not those of --generated {args.generated} "
                         f"({_unit_list_difference(real, generated)}); pass the recording it was generated from as "
                         "--real (and its --epoch)")
    # a chosen bin longer than the windows gave NaN metrics with n_bins 0; the default is not refused (windows
    # shorter than 0.2 s, e.g. ripples, still get the other metrics)
    binned_what = "the binned-count correlation, Fano factor and pairwise correlations"
    bins_note = None
    if chosen["--bin-size"]:
        check_bins_fit(args.bin_size, support_segments(generated.support), "--bin-size", binned_what)
    else:  # ... but said so: they came out NaN with n_bins 0 (or 1) and no word
        bins_note = bins_fit_problem(args.bin_size, support_segments(generated.support), binned_what)
    try:
        metrics = compare_recordings(real, generated, bin_size=args.bin_size, psth_bin_size=args.psth_bin_size,
                                     min_isis=args.min_isis, window_length=grid[0] if grid else None,
                                     dt_resolution=grid[1] if grid else None,
                                     min_trial_coverage=args.min_trial_coverage,
                                     min_trial_coverage_option="--min-trial-coverage",
                                     timing_tolerances=timing_tolerances, timing_chance_draws=timing_chance_draws)
    except ValueError as err:  # the generated windows outside --real (another epoch): name the flag
        if not str(err).startswith("generated.time_support:"):
            raise
        raise ValueError("--real:" + str(err).removeprefix("generated.time_support:")) from None
    if chosen["--min-trial-coverage"] and (real.trials is None or not len(real.trials)):
        warnings.warn(f"--min-trial-coverage {args.min_trial_coverage:g} has no effect: the real recording has no "
                      "trials, so there is no trial-aligned PSTH (psth_corr is NaN)")
    if chosen["--psth-bin-size"] and not metrics["psth_n_trials_used"]:  # it was taken and had no effect, silently
        # trials partly covered (below --min-trial-coverage) were said to lie outside the windows
        warnings.warn(f"--psth-bin-size {args.psth_bin_size:g} s has no effect: no trial of the real recording is "
                      f"used, so there is no trial-aligned PSTH (psth_corr is NaN: {metrics['psth_reason']})")
    if chosen["--psth-bin-size"] and metrics["psth_n_trials_used"] and metrics["psth_n_bins"] < MIN_CORR_POINTS:
        from .recording import count_noun
        raise ValueError(
            f"--psth-bin-size: {args.psth_bin_size:g} s leaves {count_noun(metrics['psth_n_bins'], 'whole bin')} in the covered "
            f"trial length ({metrics['psth_duration_s']:g} s, {metrics['psth_n_trials_used']} trials), and the PSTH "
            f"correlation needs at least {MIN_CORR_POINTS} (over 2 it is +1 or -1 whatever the PSTHs); expected a bin "
            f"of at most {width_at_most(metrics['psth_duration_s'] / MIN_CORR_POINTS)} s")
    if not chosen["--psth-bin-size"] and metrics["psth_n_trials_used"] and metrics["psth_n_bins"] < MIN_CORR_POINTS:
        # the default 10 ms bin in trials covered for less than 30 ms: NaN, and the way out was not said
        metrics["psth_reason"] += (f"; pass a --psth-bin-size of at most "
                                   f"{width_at_most(metrics['psth_duration_s'] / MIN_CORR_POINTS)} s")
    metrics["isi_ks_floor_source"] = source
    _warn_unreachable_timing(timing_tolerances, grid, source, given=args.timing_tolerances is not None)
    same_source = source_matches(real, generated.support, scratch)
    metrics["real_is_generation_source"] = same_source  # None: the file does not record it
    metrics["generation_settings"] = settings  # model, split, mode, ... (None: not recorded)
    if same_source is False:
        warnings.warn(
            f"--real: inside the generated windows it holds other spikes than the recording {args.generated} was "
            "generated from (a re-simulated or re-exported file with the same units?); the metrics compare the "
            "generated spikes with a recording the model never conditioned on; pass the recording given to "
            "'neuroformer generate --data'", UserWarning, stacklevel=2)
    # windows that reached the spike cap were cut there (no EOS): their counts, rates and ISIs are biased
    # low, which generate printed but evaluate, reading the file later, did not say
    capped = settings.get("n_capped_windows") if settings is not None else None
    metrics["n_capped_generated_windows"] = capped  # None: the file does not record it
    if spikes_check is not None:  # --real against the model's record of its training spikes
        metrics["model_training_spikes_check"] = spikes_check
    if grid is None:
        metrics["isi_ks_floor_reason"] += (
            f": {args.generated} does not record them (written otherwise than by this version of 'neuroformer "
            "generate') and no --model was given; pass the --model that generated it")
    if args.model:
        from .likelihood import split_bits_per_spike

        bps = split_bits_per_spike(model, tokenizer, real, plan, args.split, ci_block_s=ci_block_s,
                                   ci_block_s_option=CI_BLOCK_S_FLAG,
                                   check_modalities=False,  # _check_units checked --real's modalities
                                   check_training_spikes=False,  # and its spikes (spikes_check): one warning
                                   warn_absent_units=False)  # and its units
        metrics.update(_bits_per_spike_keys(bps, args.split))
        _print_bits_per_spike(bps, args.model, args.split)
    made = (f", {settings['split']} windows, {settings['mode'].replace('_', '-')} past{_decoding_text(settings)}, "
            f"by {settings['model']}" if settings is not None else "")
    print(f"[neuroformer] {args.generated} vs {args.real or 'built-in simulated recording'} "
          f"over {metrics['support_duration_s']:.1f} s of generated windows ({metrics['n_units']} units{made}):")
    _print_fidelity(metrics)
    undefined = [k for k in BINNED_METRICS if isinstance(metrics.get(k), float) and math.isnan(metrics[k])
                 and (metrics.get("fano_mode") == "bins" or not k.startswith("fano"))]  # trial Fano: no bins
    if bins_note is not None and undefined:
        why, longest = bins_note
        fix = f"of at most {width_at_most(longest)} s" if longest else "shorter than the windows"
        print(f"  note: {', '.join(undefined)} undefined (NaN; null in the JSON): the default --bin-size {why}; "
              f"pass a --bin-size {fix} for them (the other metrics do not use it)")
    if capped:
        print(f"  note: {capped} of the {settings.get('n_windows', '?')} generated windows "
              f"{'was' if capped == 1 else 'were'} cut by the spike cap "
              f"(max_spikes {settings.get('max_spikes')}), so the generated counts and rates are biased low in them "
              "(n_capped_generated_windows)")
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)  # a new folder passed check_writable_parent
        write_json(out, metrics)
        print(f"[neuroformer] wrote {out} (all metrics, per-unit values included; undefined values as null)")
    if figure is not None:
        from .plotting import plot_fidelity

        Path(figure).parent.mkdir(parents=True, exist_ok=True)
        # the bins the metrics used, when chosen: the figure drew 10 ms PSTHs / 0.1 s rates whatever
        # --psth-bin-size / --bin-size said, so its curves were not those psth_corr / binned_count_corr scored
        # (the defaults stay the figure's own: finer PSTH bins for trials shorter than 0.1 s)
        fig_bin, duration = None, 5.0
        if metrics["psth_n_trials_used"]:
            fig_bin = args.psth_bin_size if chosen["--psth-bin-size"] else None
        elif chosen["--bin-size"]:
            fig_bin, duration = args.bin_size, max(5.0, 2 * args.bin_size)  # at least 2 bins where the segment allows
        fig = plot_fidelity(real, generated, path=figure, bin_size=fig_bin, duration=duration,
                            min_trial_coverage=args.min_trial_coverage, overwrite=True)  # vetted: _check_new_file
        title = fig.get_suptitle()
        what = "trial-aligned PSTHs" if "PSTH" in title else "binned rates over time"
        bins = title.split("; ", 1)[1] if "; " in title else ""  # e.g. 'PSTH over 28 trials, 10 ms bins'
        print(f"[neuroformer] wrote {figure} (rasters and {what} of the most active units)" + (f"; {bins}" if bins else ""))
    return 0


def _note_capped_shards(num_shards: int, windows: Dict[str, int]) -> None:
    """Print a note naming the splits (``windows``: split -> windows) of fewer windows than
    ``--num-shards``: a shard holds at least one window, so they got one shard per window, which
    the shard counts alone did not say (``prepare``, and ``push`` of a windows dataset)."""
    fewer = [s for s, n in windows.items() if 0 < n < num_shards]
    if fewer:
        print(f"[neuroformer] note: --num-shards {num_shards}: {', '.join(fewer)} "
              f"{'has' if len(fewer) == 1 else 'have'} fewer windows than that, so one shard per window (a shard "
              "holds at least one window)")


def _spikes_outside_windows_line(manifest: dict, rec, config, mode: str) -> str:
    """``prepare``'s line on the spikes no current window covers, never trained on or scored: per
    split the manifest's ``n_spikes_outside_windows`` (:func:`~hf_neuroformer.windows.spikes_outside_windows`,
    what ``train`` writes as ``metrics.json``'s ``n_spikes_outside_windows_by_split``) of the
    spikes inside the split's segments, with ``seconds_outside_windows`` (s), and why for
    ``mode`` (``"time"`` or ``"trials"``); then the recording's spikes in no split at all."""
    from .inspection import _secs  # inspect's seconds: one decimal from 1 s up
    from .recording import count_noun

    digest = manifest["split_spikes"]
    per_split = ", ".join(f"{split} {e['n_spikes_outside_windows']} of {digest['splits'][split]['n_spikes']} spikes "
                          f"({_secs(e['seconds_outside_windows'])} s)" for split, e in manifest["splits"].items())
    why = ("each time block's first past window (read only as past) and the rest of a block shorter than a window"
           if mode == "time" else "the rest of each trial after its last whole window, and trials shorter than a window")
    n_none = len(rec.spike_times) - int(digest["n_spikes"])
    where = (f"the split_gap of {config.split_gap:g} s between blocks of different splits, and recorded time too "
             "short for a window" if mode == "time" else "between trials, and trials left out of the splits")
    return (f"[neuroformer] spikes in no current window (never trained on or scored): {per_split}: {why}; "
            f"{count_noun(n_none, 'spike')} of the recording's {len(rec.spike_times)} in no split ({where})")


def cmd_prepare(args) -> int:
    """``neuroformer prepare``: cut --data into the windows of every split and write them as Parquet shards
    with manifest.json, config.json, the tokenizer and splits.json into the new --output, for streamed training.
    Raises ValueError / FileNotFoundError / FileExistsError naming the flag (:func:`main` prints it, status 2)."""
    from .io.output_folder import check_output_folder
    from .windows import check_preparable_config, check_streamable_folder, prepare_output_spec, prepare_windows
    from .recording import count_noun

    if args.num_shards < 1:  # fail before loading anything
        raise ValueError(f"--num-shards: expected an integer >= 1, got {args.num_shards}")
    out = check_output_folder(args.output, prepare_output_spec(), overwrite=args.overwrite)
    check_streamable_folder(out, "--output")
    if args.config:
        config, _, training_given = _load_config(args.config, training_fields=True)
        if training_given:
            import shlex

            # the prepared directory keeps the window, split, tokenizer and network fields (config.json), not
            # these: 'train --data OUT' without --config trained with the defaults (every shipped config has a
            # training: section), where its network fields came along
            warnings.warn(f"--config: its training: section ({', '.join(training_given)}) is not kept with the "
                          "prepared windows (they hold the window, split, tokenizer and network settings); give "
                          f"train the --config too, \"neuroformer train --data {shlex.quote(args.output)} --config "
                          f"{shlex.quote(args.config)} ...\", or it trains with the default training settings")
    else:
        config = _default_config(args.data)
    check_preparable_config(config)  # prepare_windows checks it only after the whole recording was read
    rec = _load_data(args.data, args.epoch, no_model_command="prepare")
    print(f"[neuroformer] data: {rec}")
    manifest = prepare_windows(rec, out, config, num_shards=args.num_shards, overwrite=args.overwrite)
    for split, entry in manifest["splits"].items():
        # plural only above 1: a split of one shard (--num-shards 1) printed "1 shards"
        print(f"  {split:<10s} {count_noun(entry['n_windows'], 'window'):>16s} "
              f"{count_noun(entry['n_spikes'], 'spike'):>17s} {count_noun(len(entry['shards']), 'shard'):>11s}  "
              f"({entry['n_truncated_spikes']} truncated in "
              f"{count_noun(entry['n_truncated_windows'], 'window')}, "
              f"{count_noun(entry['n_truncated_past_spikes'], 'past-window spike')} left out of "
              f"{count_noun(entry['n_truncated_past_windows'], 'window')}"
              + (f"; {entry['n_windows_without_spikes']} without a spike, kept"
                 if entry.get("n_windows_without_spikes") else "") + ")")
    print(_spikes_outside_windows_line(manifest, rec, config, json.loads((out / "splits.json").read_text())["mode"]))
    print(f"[neuroformer] wrote {out}/ (data/*.parquet, manifest.json, config.json, tokenizer, splits.json)")
    _note_capped_shards(args.num_shards, {s: e["n_windows"] for s, e in manifest["splits"].items()})
    no_past = config.max_past_length == 1  # by design (ablate's state-only variant): no budget to raise, as train says
    n_past = sum(e.get("n_truncated_past_spikes", 0) for e in manifest["splits"].values())
    if no_past and n_past:
        from .training import no_past_note

        print(no_past_note(n_past))
    cut = [(k, f) for k, f in (("n_truncated_spikes", "max_window_length"), ("n_truncated_past_spikes", "max_past_length"))
           if any(e.get(k, 0) for e in manifest["splits"].values()) and not (no_past and f == "max_past_length")]
    if cut:  # the prepared windows keep the cut for every run that streams them
        import shlex

        # quoted for the shell: a path with a space gave a command that passed half of it
        inspect = "neuroformer inspect" + "".join(f" {flag} {shlex.quote(str(v))}" for flag, v in (
            ("--data", args.data), ("--epoch", args.epoch), ("--config", args.config)) if v is not None)
        print("[neuroformer] note: spikes were cut from windows longer than "
              + " and ".join(f"{f}={getattr(config, f)} tokens" for _, f in cut)
              + (" (past-window spikes counted once per window that reads them)"
                 if cut[-1][0] == "n_truncated_past_spikes" else "")
              + f"; every run that trains on these windows keeps the cut. \"{inspect}\" gives the values that hold "
              "99 % of the training windows whole: set them in a --config and prepare again")
    return 0


def cmd_inspect(args) -> int:
    """``neuroformer inspect``: print what --data holds (units, firing rates, epochs, trials, behaviour) and
    the spikes per window against --config's token budget; writes JSON to --output and a figure to --figure only
    when given. Raises ValueError / FileNotFoundError / FileExistsError naming the flag (status 2)."""
    from .inspection import describe_recording, format_description
    from .jsonio import write_json

    inputs = {"--data": args.data, "--config": args.config}
    if args.output is not None:
        _check_not_an_input(args.output, "--output", inputs)
        # --output runs/a2929/metrics.json --overwrite replaced the model's metrics with the summary
        _check_not_a_file_of_its_model_folder(args.output, "--output")
        _check_new_file(args.output, "--output", args.overwrite, suffix=".json")
    if args.figure is not None:
        _check_figure_file(args.figure, "--figure")
        _check_not_an_input(args.figure, "--figure", inputs)
        _check_not_a_file_of_its_model_folder(args.figure, "--figure")
        _check_new_file(args.figure, "--figure", args.overwrite)
        if args.output is not None and Path(args.figure).resolve() == Path(args.output).resolve():
            raise ValueError(f"--figure: {args.figure!r} is also --output; name two files")
    config = _load_config(args.config)[0] if args.config else _default_config(args.data)
    rec = _load_data(args.data, args.epoch, no_model_command="inspect")
    desc = describe_recording(rec, config)
    print(format_description(desc))
    if args.output is not None:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.output, desc)
        print(f"[neuroformer] wrote {args.output}")
    if args.figure is not None:
        from .plotting import plot_recording

        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        plot_recording(rec, config, path=args.figure, overwrite=True)  # vetted: _check_new_file
        print(f"[neuroformer] wrote {args.figure}")
    return 0


def _comma_items(text: str, flag: Optional[str], what: str, example: str) -> list:
    """The items of the comma-separated value ``text`` of ``flag``, stripped, in order (str).

    Raises:
        ValueError: an empty item (``'a,,b'``, ``'a,'``: one left out by mistake, maybe), or no
            item at all (``''``, ``','``); the message opens with ``flag`` (none when None, for an
            argparse ``type``, which names the flag itself) and names ``what`` is expected, such
            as ``example``.
    """
    where = f"{flag}: " if flag else ""
    items = [t.strip() for t in text.split(",")]
    if not any(items):
        raise ValueError(f"{where}expected {what} separated by commas, such as {example}, got {text!r}")
    if "" in items:
        raise ValueError(f"{where}an empty item in {text!r}; expected {what} separated by single commas, such as "
                         f"{example}")
    return items


def _regression_loss(args, kinds: Optional[list]) -> dict:
    """The ``DecodingTarget`` keywords of ``finetune --regression-loss``, ``--num-bins`` and
    ``--hl-gauss-sigma-ratio`` for every regression target: ``{}`` for the default, ``mse``;
    ``{"loss": "hl_gauss", "num_bins": K (int), "hl_gauss_sigma_ratio": R (float)}`` for the
    histogram loss (:class:`~hf_neuroformer.decoding.DecodingTarget`; plan 9 of BENCHMARKS.md ran
    64 bins, 0.75). The standard library only: refused before the recording is read.

    Raises:
        ValueError: ``--num-bins`` / ``--hl-gauss-sigma-ratio`` without ``--regression-loss hl_gauss``
            (the MSE head has no value bins: they would be ignored), ``hl_gauss`` without one of them,
            a value :func:`~hf_neuroformer.argument_checks.check_hl_gauss_settings` refuses (named by
            its flag), or ``hl_gauss`` with ``--kind`` giving no ``regression`` target.
    """
    flags = (("--num-bins", args.num_bins), ("--hl-gauss-sigma-ratio", args.hl_gauss_sigma_ratio))
    if args.regression_loss != "hl_gauss":
        for flag, value in flags:
            if value is not None:  # an MSE head has no bins: the value would be ignored
                raise ValueError(f"{flag}: only with --regression-loss hl_gauss (the loss is {args.regression_loss}, "
                                 f"which has no value bins), got {value!r}")
        return {}
    missing = [flag for flag, value in flags if value is None]
    if missing:
        raise ValueError(f"{missing[0]}: needed with --regression-loss hl_gauss (e.g. --num-bins 64 "
                         f"--hl-gauss-sigma-ratio 0.75, the settings of plan 9 in BENCHMARKS.md)")
    try:
        num_bins = check_hl_gauss_settings(args.num_bins, args.hl_gauss_sigma_ratio)
    except ValueError as err:  # 'num_bins: expected ...' -> '--num-bins: expected ...'
        field, _, rest = str(err).partition(": ")
        raise ValueError(f"{_flag(field)}: {rest}") from None
    if kinds is not None and "regression" not in kinds:
        raise ValueError(f"--regression-loss hl_gauss: a loss of regression targets, and --kind gives none "
                         f"({','.join(kinds)}); expected --kind regression for a target, or the default loss, mse")
    return {"loss": "hl_gauss", "num_bins": num_bins, "hl_gauss_sigma_ratio": float(args.hl_gauss_sigma_ratio)}


def cmd_finetune(args) -> int:
    """``neuroformer finetune``: fine-tune a trained --model (or its architecture, --from-scratch) to decode
    each --target from the spikes of a window; writes the decoder, metrics.json, decoding_report.json and
    test predictions into --output-dir. Raises ValueError / FileNotFoundError / FileExistsError naming the flag."""
    # --target x --target ry kept only ry; now every occurrence counts, as does x,ry
    texts = _comma_items(",".join(args.target), "--target", "variable names", "x,ry or position[1]")
    # the form of each item (NAME or NAME[k]), the kinds and the --set keys need no library: usage errors, before
    # torch is imported (5-10 s); the names against the recording's own once it is read
    try:
        items = [target_label_form(n) for n in texts]
    except ValueError as err:
        raise ValueError(f"--target: {err}") from None
    kinds = _comma_items(",".join(args.kind), "--kind", "kinds", "regression,circular") if args.kind else None
    if kinds is not None and len(kinds) != len(texts):
        raise ValueError(f"--kind: expected one kind per --target item ({len(texts)}; a 2-D series' kind applies to "
                         f"each of its columns), got {len(kinds)}: {kinds}")
    bad = [k for k in kinds or [] if k not in KINDS]
    if bad:  # before the recording is read, named by the flag
        raise ValueError(f"--kind: expected one of {', '.join(KINDS)} per target, got {bad[0]!r} in {kinds}")
    regression_loss = _regression_loss(args, kinds)  # the flags alone, before the recording is read
    try:  # the values once the model's config is read
        sets = override_keys(config_settings(args.config_overrides))
    except ValueError as err:
        raise ValueError(f"--set: {err}") from None
    # the numbers, named by their flags, before the model or the data is read (and torch imported)
    ci_block_s = _ci_block_s(args)
    check_finetune_settings(max_steps=args.max_steps, batch_size=args.batch_size,
                            gradient_accumulation_steps=args.gradient_accumulation_steps, eval_steps=args.eval_steps,
                            learning_rate=args.learning_rate, generative_loss_weight=args.generative_loss_weight,
                            fraction=args.fraction, freeze_backbone_steps=args.freeze_backbone_steps, label=_flag)
    check_ema_decay(args.ema_decay, "--ema-decay")
    check_spike_dropout(args.spike_dropout, "--spike-dropout")
    check_training_seed(args.seed, "--seed")  # -1 or 2**32 failed in set_seed once the model and data were read
    from .decoding import DecodingTarget, DecodingTargetError, check_targets_sampled, expand_columns, infer_kind, \
        kind_problem, parse_target_label, target_label
    from .finetuning import apply_config_overrides, check_finetune_output_dir, check_output_not_model, finetune
    from .generation import _read_model_config, check_model_dir
    from .tokenization_neuroformer import NeuroformerTokenizer

    if len(set(items)) != len(items):
        raise ValueError(f"--target: each target once, got {[target_label(n, c) for n, c in items]}")
    check_model_dir(args.model, "--model", weights=not args.from_scratch)
    base = _read_model_config(Path(args.model), "--model")
    try:
        apply_config_overrides(base, sets)  # a bad --set value fails before any work
    except ValueError as err:
        raise ValueError(f"--set: {err}") from None
    check_output_not_model(args.output_dir, args.model, {"output_dir": "--output-dir", "model_dir": "--model"}.get)
    check_finetune_output_dir(args.output_dir, args.overwrite)  # fail before loading anything
    if args.data is None:  # after the model's and --output-dir's checks, before 20 s of simulation
        # default_recording holds no behaviour, trials or epochs: refused as "--target 'x': not in this recording;
        # available targets: []" once simulated (or, for a model of another recording, as other units)
        raise ValueError("--data: not given, and the built-in simulated recording read without it holds no "
                         "behaviour series and no trial columns, so it has nothing to decode; pass --data, the "
                         "recording whose behaviour --target names")
    rec = _load_data(args.data, args.epoch)
    _check_units(NeuroformerTokenizer.from_pretrained(args.model), rec, args, config=base)
    print(f"[neuroformer] data: {rec}")
    cw = None if args.class_weight == "none" else args.class_weight
    items = [parse_target_label(n, rec) for n in texts]  # a series named 'head[0]' is itself, not a column of 'head'
    targets = [DecodingTarget(n, kinds[i] if kinds else infer_kind(rec, n), column=c, class_weight=cw)
               for i, (n, c) in enumerate(items)]
    try:  # a 2-D series without [k]: one target per column, named position[0], position[1], ...
        targets = expand_columns(rec, targets)
    except DecodingTargetError as err:
        raise ValueError(f"--target: {err}") from None
    for t in targets:  # a kind the values do not fit (class labels as angles ...), before the model is read
        if problem := kind_problem(rec, t):
            if all(kind_problem(rec, dataclasses.replace(t, kind=k)) for k in KINDS if k != t.kind):
                raise ValueError(f"--target {t.label!r}: {problem}")  # no kind fits (a constant): --kind cannot help
            raise ValueError(f"--kind {t.kind} for --target {t.label!r}: {problem}" if kinds else
                             f"--target {t.label!r}: the default kind {t.kind!r} (trial columns classification, series "
                             f"in rad circular, else regression) does not fit: {problem}; choose one with --kind")
    if regression_loss:  # the kind of each target is known now (inferred from the recording without --kind)
        if not any(t.kind == "regression" for t in targets):
            raise ValueError(f"--regression-loss {regression_loss['loss']}: a loss of regression targets, and none of "
                             f"--target is one ({', '.join(f'{t.label} ({t.kind})' for t in targets)}); expected "
                             f"--kind regression for a target, or the default loss, mse")
        targets = [dataclasses.replace(t, **regression_loss) if t.kind == "regression" else t for t in targets]
        print(f"[neuroformer] regression loss: {regression_loss['loss']} ({regression_loss['num_bins']} bins, sigma "
              f"{regression_loss['hl_gauss_sigma_ratio']:g} bin widths) for "
              f"{', '.join(t.label for t in targets if t.kind == 'regression')}")
    # a series without samples here (head direction in --epoch sleep), before the model is read: the library's
    # check (finetune() makes it too), named by the flags
    check_targets_sampled(rec, targets, epoch=args.epoch, epoch_known=True,
                          label={"target": "--target", "epoch": "--epoch", "recording": "--data"}.get)
    if len(targets) > len(items):
        print(f"[neuroformer] targets: {', '.join(f'{t.label} ({t.kind})' for t in targets)}")
    # the folder's files before the run: an --overwrite folder may hold others (an evaluate --output
    # eval.json, notes) that the 'wrote' line must not claim
    from .recording import count_noun
    from .windows import file_identity

    folder = Path(args.output_dir)
    before = {p.name: file_identity(p) for p in folder.iterdir() if p.is_file()} if folder.is_dir() else {}
    metrics = finetune(
        args.model, rec, targets, output_dir=args.output_dir, fraction=args.fraction, seed=args.seed,
        max_steps=args.max_steps, from_scratch=args.from_scratch, batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps, learning_rate=args.learning_rate,
        eval_steps=args.eval_steps, generative_loss_weight=args.generative_loss_weight, select_on=args.select_on,
        freeze_backbone_steps=args.freeze_backbone_steps, ema_decay=args.ema_decay,
        spike_dropout=args.spike_dropout, config_overrides=sets, overwrite=args.overwrite, log_evaluations=True, step_bar=True, ci_block_s=ci_block_s,
        ci_block_s_option=CI_BLOCK_S_FLAG, learning_rate_option="--learning-rate", write_figures=not args.no_figures,
    )
    # every file the run wrote (a fixed list left out splits.json and training_log.json; the test
    # predictions and their figure are there only when the test split has windows): new or replaced
    written = sorted(p.name for p in folder.iterdir() if p.is_file() and before.get(p.name) != file_identity(p))
    print(f"[neuroformer] wrote {args.output_dir}/ ({', '.join(written)}; config.json holds decoding_targets)")
    ema = metrics.get("training", {}).get("ema_decay")
    if ema is not None:  # else nothing printed said so: the scores below and the decoder saved are of the average
        print(f"  weights: exponential moving average over the steps, --ema-decay {ema:g} (metrics.json: training.ema_decay);"
              " the scores below and the decoder saved are of the averaged weights")
    thinned = metrics.get("training", {}).get("spike_dropout_tokens")
    if thinned is not None:  # the only sign, beside metrics.json, that the training windows were not the recorded ones
        counts = ("" if thinned.get("spikes") is None else
                  f", {thinned['dropped']} of {count_noun(thinned['spikes'], 'spike token')} of the training batches "
                  "dropped")
        print(f"  training windows thinned: --spike-dropout {args.spike_dropout:g}{counts} (metrics.json: "
              "training.spike_dropout, spike_dropout_tokens); validation and test windows are whole")
    for split in ("train", "validation", "test"):
        r = metrics["decoding_report"][split]
        fitted = ""
        if split == "train" and metrics["n_train_windows"] < r["n_windows"]:  # this line alone read as all of them fitted
            used = metrics.get("train_windows_used_s") or []
            span = f", starts {used[0]:.3f}-{used[1]:.3f} s" if len(used) == 2 else ""
            fitted = (f"; --fraction {args.fraction:g}: the first {metrics['n_train_windows']} in time fitted{span} "
                      "(metrics.json: n_train_windows, train_windows_used_s)")
        print(f"  {split}: {r['n_windows']} of {count_noun(r['n_windows_before'], 'window')} "
              f"(dropped: {r['n_dropped_mask']} by mask, {r['n_dropped']} without a value of any target){fitted}")
        for label, k in r.get("n_unseen_class", {}).items():  # left out of its metrics, as windows without a value
            if k:
                unseen = r["unseen_classes"][label]
                print(f"    {label}: {count_noun(k, 'window')} of {'class' if len(unseen) == 1 else 'classes'} {unseen} "
                      "that the train "
                      "split lacks, "
                      "left out of its metrics (as windows without a value)")
        for label, k in r["n_masked_nan"].items():  # each target is trained and scored on its own windows
            if k:
                print(f"    {label}: {count_noun(k, 'window')} without a value in {split}, masked "
                      f"({r['n_windows_target'][label]} "
                      "with one)")
    _print_metrics({k: v for k, v in metrics.items() if not k.endswith("/n")})
    return 0


def _refuse_builtin_units(tokenizer, model_dir, what: str = "decoder", trained: str = "fine-tuned",
                          verb: str = "decoded", flag: str = "--data") -> None:
    """``decode`` (and ``generate``, ``embed``, ``evaluate --model``) without ``--data`` / ``--real``: refuse
    at once a model (``what``: "decoder", "model") that lacks a unit of the built-in
    simulated recording (:func:`~hf_neuroformer.simulation.default_recording_units`, known without
    simulating it): the refusal came from :func:`_check_units` after some 20 s of simulation. A
    decoder fine-tuned on the built-in recording (with behaviour added in Python) knows its units
    and goes on.

    Raises:
        ValueError: opening with ``flag``, naming the model's units and the recording it was
            trained / fine-tuned on where its ``metrics.json`` records it (``recording``).
    """
    from .finetuning import saved_metric
    from .recording import count_noun
    from .simulation import default_recording_units
    from .tokenization_neuroformer import NeuroformerTokenizer

    session, names = default_recording_units()
    vocab = tokenizer.get_vocab()
    if all(tokenizer.unit_token(session, n) in vocab for n in names):
        return
    specials = set(tokenizer.all_special_tokens)
    known = [t for t in vocab if t not in specials]
    sessions = sorted({NeuroformerTokenizer.session_of(t) for t in known if "/" in t})
    recording = saved_metric(model_dir, "recording")
    fine_tuned_on = f" ({recording})" if isinstance(recording, str) and recording.strip() else ""
    raise ValueError(
        f"{flag}: not given, so the built-in simulated recording (session {session!r}, {count_noun(len(names), 'unit')} "
        f"{names[0]} .. {names[-1]}) would be {verb}, but the {what} {str(model_dir)!r} was {trained} on other units "
        f"({count_noun(len(known), 'unit')} of session {', '.join(repr(x) for x in sessions) or '(none)'}) and reads "
        f"only those; pass {flag}, the recording it was {trained} on{fine_tuned_on} (or one with the same units)")


def cmd_decode(args) -> int:
    """``neuroformer decode``: run a fine-tuned decoder --model over windows tiling --data (its --epoch or a
    split) and write one CSV row per window to --output (and a figure to --figure); prints the scores.
    Raises ValueError / FileNotFoundError / FileExistsError naming the flag (:func:`main` prints it, status 2)."""
    ci_block_s = _ci_block_s(args)  # before anything is read or written, and before torch is imported
    check_pass_counts(batch_size=args.batch_size, label=_flag)
    import numpy as np

    from .decoding import target_label
    from .finetuning import decode_windows, load_decoder, saved_train_windows_used, windows_tiling
    from .jsonio import write_atomic
    from .metrics.bootstrap import CI_BLOCK_S, count_blocks, few_blocks_hint, warn_block_s_unused, window_blocks
    from .metrics.decoding import decoding_metrics, decoding_metrics_ci
    from .windows import check_split_in_recording, recorded_stretches, tiling_windows

    from .io.output_folder import check_file_name

    check_file_name(args.output, "--output")  # as a Path, "x.csv/" lost its slash and x.csv was written
    out = Path(args.output)
    _check_not_an_input(out, "--output", {"--data": args.data})  # a CSV recording replaced by the decoded values
    _check_not_a_model_file(out, "--output", args.model)
    _check_new_file(out, "--output", args.overwrite, suffix=".csv")  # fail before loading anything
    if args.figure is not None:
        _check_figure_file(args.figure, "--figure")
        _check_not_a_model_file(args.figure, "--figure", args.model)
        _check_new_file(args.figure, "--figure", args.overwrite)
        if Path(args.figure).resolve() == out.resolve():
            raise ValueError("--figure: the same file as --output; expected another file name")
    model, tokenizer, plan = load_decoder(args.model, "--model")
    if args.data is None:  # before the ~20 s of simulating the built-in recording
        _refuse_builtin_units(tokenizer, args.model)
    from .analysis._batches import check_finite_weights

    # a diverged decoder's NaN predictions were written to the CSV, then scoring blamed the data
    check_finite_weights(model, args.model, gives="every decoded value",
                         learning_rate_option=_learning_rate_option(model.config))
    if args.ci_block_s is not None:  # a trial split's blocks are its trials: said, not ignored
        warn_block_s_unused(plan.mode, ci_block_s, CI_BLOCK_S_FLAG, model.config.current_window + model.config.past_window,
                            asked=True)
    else:  # the length finetune scored the decoder's test windows with, so decode prints finetune's intervals
        ci_block_s = _finetuned_block_s(args.model) or CI_BLOCK_S
    cfg = model.config
    rec = _load_data(args.data, args.epoch)
    spikes_check = _check_units(tokenizer, rec, args, config=cfg)
    if args.split:
        try:
            check_split_in_recording(plan, args.split, rec, flag="--data")
        except ValueError as err:  # blamed --data only: --split itself asks for the windows of the decoder's own epoch
            whole = f"--epoch {args.epoch!r} of --data" if args.epoch else "--data"
            raise ValueError(f"{err}; --split picks among the decoder's splits, which are of the recording (and --epoch) "
                             f"it was fine-tuned on: drop --split to decode every window of {whole}") from None
        # as finetune scored them: one window per stretch of overlapping trials (a trial listed twice decoded once)
        starts, clips = tiling_windows(plan, args.split, cfg, use="decoded")
        where = f"the decoder's {args.split} windows"
        tiled = plan.segments[args.split]  # what the windows tile: the blocks of their intervals
    else:
        # one window per stretch of overlapping trials, as with --split (warned; pointing where --split's warning points)
        starts, clips = windows_tiling(rec, cfg, plan.mode, stacklevel=3)
        tiled = (np.asarray(rec.trials, dtype=np.float64).reshape(-1, 2) if plan.mode == "trials"
                 else recorded_stretches(rec.support))  # as windows_tiling tiles it
        where = ("every trial" if plan.mode == "trials" else "the recorded time") + (
            f" of --epoch {args.epoch!r}" if args.epoch else "")
    if not len(starts):
        raise ValueError(f"--data: no window fits in {where}: each needs {cfg.current_window} s"
                         + ("" if plan.mode == "trials" else f" after a {cfg.past_window} s past window"))
    table, info = decode_windows(model, tokenizer, rec, starts, past_clip_starts=clips if plan.mode == "trials" else None,
                                 batch_size=args.batch_size, plan=plan, progress=True,
                                 warn_absent_units=False,  # _check_units warned
                                 check_modalities=False,  # and checked the recording's modalities
                                 train_used_s=saved_train_windows_used(args.model))  # beyond --fraction: train_unused
    write_atomic(out, table.to_csv(index=False), make_parent=True)  # a new folder passed check_writable_parent
    other = isinstance(spikes_check, dict) and spikes_check.get("status") == "other spikes"
    from .recording import count_noun, score_text

    print(f"[neuroformer] decoded {count_noun(len(table), 'window')} of {cfg.current_window} s tiling {where} "
          f"({info['n_truncated_windows']} with spikes beyond the token budget, cut)")
    counts = table["split"].value_counts()
    # windows outside every split are held out only where none of the decoder's fitting windows is among them
    # (another epoch or recording): between its blocks they border train / validation windows, their past
    # window reads the same spikes and their behaviour is a few hundred ms from a training label
    fitted = bool(table["split"].isin(["train", "train_unused", "validation"]).any())
    print("  windows by the decoder's split: " + ", ".join(f"{k or 'none'} {int(v)}" for k, v in counts.items())
          + (" (by time only: these are not the spikes the decoder was fine-tuned on)" if other else "")
          + ("; scored below: the test windows only (the decoder was fitted and selected on the train and validation "
             "windows, and the windows outside every split lie between them)" if fitted else
             "; scored below: test windows and windows outside every split")
          # --split validation (or train): the line above promised scores, and none followed
          + ("; none of these windows is a test window, so none is scored" if fitted and "test" not in counts else ""))
    for label, why in info["missing_targets"].items():
        print(f"  {label}: predicted only, no recorded value ({why.splitlines()[0]})")
    # the values as numbers, for the scores and then the figure: class labels -> indices of the decoder's
    # classes (NaN for a recorded class the decoder has none for), NaN where nothing was recorded
    targets = cfg.decoding_targets
    recorded = np.full((len(table), len(targets)), np.nan)
    decoded = np.zeros_like(recorded)
    unseen = np.zeros(recorded.shape, dtype=bool)  # recorded, but a class the decoder does not know
    split = table["split"].to_numpy()
    with_intervals = False  # whether any window was scored (those get intervals)
    unseen_left_out = False  # whether a window to score was left out for a class the decoder has none for
    for j, t in enumerate(targets):
        label = target_label(t["name"], t.get("column"))
        index = {c: i for i, c in enumerate(t.get("classes") or [])}
        as_number = (lambda v: index.get(v, np.nan)) if t["kind"] == "classification" else float
        decoded[:, j] = [as_number(v) for v in table[f"{label}_predicted"]]
        if label in table.columns:
            has = np.asarray([v is not None and v == v for v in table[label]], dtype=bool)
            recorded[has, j] = [as_number(v) for v in table[label].to_numpy()[has]]
            unseen[:, j] = has & np.isnan(recorded[:, j])
        if label not in info["recorded_targets"]:
            continue
        has = ~np.isnan(recorded[:, j]) | unseen[:, j]  # a recorded value, known class or not
        if not has.any():
            print(f"  {label}: predicted only, the recording has no value of it in these windows")
        if fitted and "test" in counts and has.any() and not (has & (split == "test")).any():
            # recorded in the windows the decoder was fitted on only: the target got no line at all, while another
            # was scored below the split line's promise (with no test window, that line said none is scored)
            print(f"  {label}: not scored, no test window has a recorded value of it (only windows the decoder was "
                  "fitted or selected on, or that lie between them, have)")
        for name, rows in (("test", split == "test"), ("other (outside the decoder's splits)", (split == "") & (not fitted))):
            if not (rows & has).any():
                continue
            left_out = ""
            if (rows & unseen[:, j]).any():
                unseen_left_out = True
                classes = sorted({str(v) for v in table[label].to_numpy()[rows & unseen[:, j]]})
                left_out = (f" ({int((rows & unseen[:, j]).sum())} more {name} windows left out: their recorded class "
                            f"{', '.join(classes)} is none of the decoder's classes {list(t['classes'])})")
            rows = rows & has & ~unseen[:, j]
            if not rows.any():
                print(f"  {label}: not scored on the {name} windows" + left_out)
                continue
            m = decoding_metrics(recorded[rows, j], decoded[rows, j], t["kind"])
            shown = {k: v for k, v in m.items() if k in ("r2", "pearson_r", "mean_angular_error_deg",
                                                        "median_angular_error_deg", "accuracy", "balanced_accuracy")}
            cis, about = {}, ""
            # 95 % block-bootstrap intervals: over the decoder's test blocks (as finetune's), and for windows
            # outside its splits (another epoch or recording) over blocks of the trials / intervals they tile
            with_intervals = True
            segments = plan.segments["test"] if name == "test" else tiled
            at = table["window_start_s"].to_numpy(dtype=np.float64)[rows]
            blocks, definition = window_blocks(at, segments, plan.mode, ci_block_s,
                                               "of the split" if name == "test" else "decoded here")
            hint = few_blocks_hint(at, segments, plan.mode, ci_block_s, CI_BLOCK_S_FLAG)
            cis = decoding_metrics_ci(recorded[rows, j], decoded[rows, j], t["kind"], blocks, hint=hint)
            about = f"\n    (95% CI: block bootstrap over {count_blocks(blocks)} blocks, {definition})"
            missing = _missing_intervals_text(cis, shown)
            if missing:
                about = f"\n    {missing}" + about

            def score(k, v):  # a tiny R² printed as "-0.000 [95% CI -0.000, 0.000]"
                ci = cis.get(k, {}).get("interval")
                return f"{k} {score_text(v)}" + ("" if ci is None else
                                                 f" [95% CI {score_text(ci[0])}, {score_text(ci[1])}]")

            print(f"  {label} on the {int(rows.sum())} {name} windows with a recorded value: "
                  + ", ".join(score(k, v) for k, v in shown.items()) + left_out + about)
    if not with_intervals and not (fitted and "test" not in counts):  # (that case said so above)
        # the split line promised scores below: say why none followed (e.g. head direction decoded in sleep)
        # (windows whose recorded class the decoder has none for do have a value: 'left out' above says so)
        # beside a regression (circular) target, the class clause is the classification targets' alone
        kinds = " or ".join(sorted({t["kind"] for t in targets} - {"classification"}))
        what = (" has a recorded value of a target" if not unseen_left_out else
                " has a recorded value of a target in a class the decoder knows (the windows left out above hold "
                "only others)" if not kinds else
                f" has a recorded value of a {kinds} target or a recorded class the decoder knows of a "
                "classification target (the windows left out above hold only other classes)")
        print("  no window scored: " + ("no test window" if fitted else "no test window or window outside every split")
              + what)
    if args.ci_block_s is not None and not with_intervals:
        warnings.warn(f"{CI_BLOCK_S_FLAG} {ci_block_s:g} has no effect: no decoded window with a recorded value was "
                      "scored (only the decoder's test windows and windows outside all its splits are)"
                      + (f" (--split {args.split})" if args.split else ""), UserWarning)
    # the columns as the CSV has them: the line said "the decoded value and the recorded one" of a file
    # whose recorded column comes first
    wrapped = (", and a circular target's decoded minus recorded angle wrapped to [-pi, pi) (<target>_error_rad)"
               if any(str(c).endswith("_error_rad") for c in table.columns) else "")
    print(f"[neuroformer] wrote {out} (columns {', '.join(map(str, table.columns))}: per target the recorded "
          f"value (<target>) where the recording has it, then the decoded one (<target>_predicted){wrapped})")
    if args.figure is not None:
        from .plotting import plot_decoding

        unit = {name: getattr(series, "unit", "") for name, series in getattr(rec, "behaviour", {}).items()}
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        plot_decoding(table["window_start_s"].to_numpy(), recorded, decoded,
                      [dict(t, unit=unit.get(t["name"], "")) for t in targets],
                      split=args.split or "decoded", path=args.figure, unknown_classes=unseen,
                      overwrite=True)  # vetted: _check_new_file
        print(f"[neuroformer] wrote {args.figure} (decoded and recorded values over time; classification: the "
              "confusion matrix of the windows with a recorded class)")
    return 0


def cmd_embed(args) -> int:
    """``neuroformer embed``: 3D PCA of a trained --model's window embeddings of one split, coloured by
    --color-by; writes the figure --output and the latents (.npy) and window metadata (.json) beside it.
    Raises ValueError / FileNotFoundError / FileExistsError naming the flag (:func:`main` prints it, status 2)."""
    check_pass_counts(batch_size=args.batch_size, label=_flag)  # -3 gave no windows and a PCA error
    import numpy as np
    from sklearn.decomposition import PCA

    from .analysis._batches import check_finite_weights
    from .contrastive import latent_width, window_latents, window_values
    from .jsonio import json_safe, write_atomic
    from .metrics.decoding import unit_is_degrees
    from .plotting import MAX_LATENT_CATEGORIES, latent_colours_are_categorical, plot_latents_3d
    from .processing_neuroformer import NeuroformerProcessor
    from .recording import count_noun
    from .windows import check_split_in_recording, tiling_windows

    from .io.output_folder import check_file_name

    check_file_name(args.output, "--output")  # as a Path, "x.png/" lost its slash and x.png was written
    out = Path(args.output)
    _check_figure_file(out, "--output")  # x.json / x.npy were also the names of the latents and metadata files
    npy, meta = out.with_suffix(".npy"), out.with_suffix(".json")
    for path, flag in ((out, "--output"), (npy, "--output (.npy beside it)"), (meta, "--output (.json beside it)")):
        _check_not_a_model_file(path, flag, args.model)
        _check_new_file(path, flag, args.overwrite)  # fail before loading anything
    # the backbone only: a fine-tuned decoder's embeddings are fine too
    model, tokenizer, plan = _load_model(args, next_spike_heads=False)
    # NaN latents failed in scikit-learn's PCA
    check_finite_weights(model, args.model, learning_rate_option=_learning_rate_option(model.config))
    # an unknown name was refused only after the recording was read and its windows built (and warned of)
    width = latent_width(model, args.projected, flag="--projected")
    if width < 3:
        # scikit-learn's PCA failed after every window was embedded ("n_components=3 must be between 0 and
        # min(n_samples, n_features)=2"), naming no flag, and nothing was written
        what = (f"--projected: {args.projected!r} projects to {count_noun(width, 'dimension')} (the model's "
                f"contrastive_projection_size)" if args.projected else
                f"--model: the pooled decoder states have {count_noun(width, 'dimension')} (the model's hidden_size)")
        raise ValueError(f"{what}, fewer than the 3 principal components this command draws"
                         + (f"; embed without --projected (the pooled decoder states, {model.config.hidden_size} "
                            "dimensions)" if args.projected else "")
                         + ("," if args.projected else ";")
                         + f" {'or ' if args.projected else ''}take the {width}-D latents themselves from "
                           "hf_neuroformer.contrastive.window_latents")
    config = model.config
    if args.data is None:  # before the ~20 s of simulating the built-in recording
        _refuse_builtin_units(tokenizer, args.model, what="model", trained="trained", verb="embedded")
    rec = _load_data(args.data, args.epoch)
    spikes_check = _check_units(tokenizer, rec, args, config=config)  # and every modality the windows read
    check_split_in_recording(plan, args.split, rec, flag="--data")
    starts, clips = tiling_windows(plan, args.split, config, use="embedded")  # one point per stretch of time
    if len(starts) < 4:
        raise ValueError(f"--split: {args.split!r} has {len(starts)} windows; a 3D PCA needs at least 4")
    values, circular, unit = window_values(rec, args.color_by, starts, config.current_window)
    if np.isnan(values).all():  # an all-grey plot after the latents were computed, and only a count said so
        # the windows are the model's (its splits.json), wherever --epoch reads the recording: another --epoch
        # cannot move them (one without them is refused above), so only the variable or --split can help
        plan_file = Path(args.model) / "splits.json"
        where = (f"the model's split plan ({plan_file}), read over --epoch {args.epoch!r}" if args.epoch else
                 f"the model's split plan ({plan_file}: the time it was trained on; no --epoch given)")
        raise ValueError(f"--color-by: {args.color_by!r} has no sample in any of the {len(starts)} {args.split} "
                         f"windows (--split {args.split}) of {where}, so no window would get a colour; pass a "
                         "variable recorded during those windows, or another --split (the windows come from the "
                         "model, so another --epoch cannot move them)")
    n_levels = int(np.unique(values[np.isfinite(values)]).size)
    if args.color_scale == "categorical" and n_levels > MAX_LATENT_CATEGORIES:
        raise ValueError(f"--color-scale categorical: {args.color_by!r} takes {n_levels} distinct values in the "
                         f"{len(starts)} {args.split} windows, more than the {MAX_LATENT_CATEGORIES} that can each get "
                         "their own colour; use --color-scale continuous (or auto)")
    categorical = (latent_colours_are_categorical(values, circular) if args.color_scale == "auto"
                   else args.color_scale == "categorical")
    processor = NeuroformerProcessor.from_config(tokenizer, config, split_mode=plan.mode)
    # _check_units has checked the recording's modalities (naming --data)
    # to_dataset warns of windows cut to the token blocks: their latents are of their kept spikes only
    ds = processor.to_dataset(rec, starts, clips if plan.mode == "trials" else None, check_modalities=False)
    latents = window_latents(model, ds, processor.collator, batch_size=args.batch_size, projected=args.projected,
                             progress=True, desc=f"embedding {args.split} windows")
    out.parent.mkdir(parents=True, exist_ok=True)
    pca = PCA(n_components=3, random_state=0)
    coords = pca.fit_transform(latents)
    ev = pca.explained_variance_ratio_
    what = f"projected for {args.projected!r}" if args.projected else "pooled decoder states, spikes only"
    # the arrays first, each to a temporary name moved into place, the figure (atomic too) last
    buf = io.BytesIO()
    np.save(buf, latents)
    meta_text = json.dumps(json_safe({
        "model": str(Path(args.model).resolve()), "split": args.split, "color_by": args.color_by, "unit": unit,
        "embedding": what, "latents_npy": npy.name, "latents_shape": list(latents.shape),
        "color_scale": "categorical" if categorical else ("circular" if circular else "continuous"),
        "window_start_s": starts.tolist(), "color_values": values.tolist(), "pca_coords": coords.tolist(),
        "pca_explained_variance_ratio": ev.tolist(), "n_windows_without_color": int(np.isnan(values).sum()),
        "model_training_spikes_check": spikes_check,
    }), indent=1)
    write_atomic(npy, buf.getvalue())
    write_atomic(meta, meta_text)
    plot_latents_3d(coords, values, label=f"{args.color_by}" + (f" ({unit})" if unit else ""), circular=circular,
                    period=360.0 if unit_is_degrees(unit) else 2 * np.pi, categorical=categorical,
                    title=f"{args.split} windows: 3D PCA of the neural embedding ({what})\n"
                          f"explained variance {ev[0]:.2f} / {ev[1]:.2f} / {ev[2]:.2f}",
                    path=out, overwrite=True)  # vetted: _check_new_file
    print(f"[neuroformer] {count_noun(len(starts), f'{args.split} window')}, latents {latents.shape} ({what}); PCA "
          f"explained variance {ev[0]:.3f} / {ev[1]:.3f} / {ev[2]:.3f}; {count_noun(np.isnan(values).sum(), 'window')} "
          "without a "
          f"{args.color_by!r} value (black crosses, 'undefined' in the legend)")
    print(f"[neuroformer] wrote {out}, {npy} (latents, one row per window) and {meta} (window starts, colours, PCA)")
    return 0


#: ``ablate``'s +contrastive weight when neither --contrastive-loss-weight nor the config gives one
ABLATE_CONTRASTIVE_WEIGHT = 0.5


def cmd_ablate(args) -> int:
    """``neuroformer ablate``: train the --config model's variants (state only, +past, +stimulus, +behaviour,
    +contrastive) per seed on the same splits; writes a markdown table of test NLLs and F1 to --output and the
    numbers to the same name with .json. Raises ValueError / FileNotFoundError / FileExistsError naming the flag."""
    # --seed / --seeds: usage errors, before the library (torch) is imported
    seeds = None
    if args.seeds is not None:
        if args.seed is not None:
            raise ValueError("--seed / --seeds: give one of them (--seeds 0,1,2 trains every variant once per seed)")
        items = _comma_items(args.seeds, "--seeds", "integers", "0,1,2")
        try:
            seeds = [int(x) for x in items]
        except ValueError:
            raise ValueError(f"--seeds: expected comma-separated integers such as 0,1,2, got {args.seeds!r}") from None
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"--seeds: expected distinct seeds, got {args.seeds!r}")
        if min(seeds) < 0:  # TrainingConfig refused it only after the recording was read, as 'training.seed'
            raise ValueError(f"--seeds: expected integers >= 0 (as --seed), got {args.seeds!r}")
        # a seed above it failed after the variants of the seeds before it had trained (numpy's bare message)
        if max(seeds) > MAX_TRAINING_SEED:
            raise ValueError(f"--seeds: expected integers in [0, {MAX_TRAINING_SEED}] (set_seed seeds numpy's legacy "
                             f"generator), as --seed; got {args.seeds!r}")
    if args.seed is not None:
        check_training_seed(args.seed, "--seed")
    from .ablation import ablation_markdown, check_contrastive_loss_weight, checkpoint_choice, run_ablation
    from .jsonio import write_atomic, write_json
    from .io.output_folder import check_file_name

    check_file_name(args.output, "--output")  # as a Path, "x.md/" lost its slash and x.md was written
    out = Path(args.output)
    if out.suffix.lower() == ".json":  # the figures' .json would replace the table, after every variant trained
        raise ValueError(f"--output: the markdown table's numbers also go to the same name with .json, so {str(out)!r} "
                         "would be both; expected a markdown file name such as ablation.md")
    # --overwrite wrote the table over the --config (or --data) it had read, after every variant trained
    inputs = {"--config": args.config, "--data": args.data}
    _check_not_an_input(out, "--output", inputs)
    _check_not_an_input(out.with_suffix(".json"), "--output (.json beside it)", inputs)
    # --output runs/a2929/metrics.md --overwrite wrote the figures over the model's metrics.json
    for path, flag in ((out, "--output"), (out.with_suffix(".json"), "--output (.json beside it)")):
        _check_not_a_file_of_its_model_folder(path, flag)
    _check_new_file(out, "--output", args.overwrite)  # fail before loading anything
    _check_new_file(out.with_suffix(".json"), "--output (.json beside it)", args.overwrite)
    # checked after the recording was read (nan, -1), or not at all (inf); named by its flag in main
    weight = ABLATE_CONTRASTIVE_WEIGHT if args.contrastive_loss_weight is None else args.contrastive_loss_weight
    check_contrastive_loss_weight(weight)
    config, training = _load_config(args.config)
    if args.contrastive_loss_weight is not None:  # it was dropped without a word where it does not apply
        if not config.modalities:
            raise ValueError(f"--contrastive-loss-weight: --config {str(args.config)!r} has no modality, so there is "
                             "no +contrastive variant to weight; leave the flag out")
        if config.contrastive_loss_weight > 0 and config.contrastive_loss_weight != weight:
            raise ValueError(f"--contrastive-loss-weight: --config {str(args.config)!r} sets contrastive_loss_weight "
                             f"{config.contrastive_loss_weight:g}, which +contrastive uses; leave the flag out, or "
                             "change the weight in the config")
    overrides = {k: v for k, v in (("max_steps", args.max_steps), ("seed", args.seed)) if v is not None}
    training = dataclasses.replace(training, **overrides)
    if args.work_dir is not None:  # run_ablation refused these as 'output_dir: ...', after reading the recording
        from .ablation import ablation_variants, check_variant_folders, variant_folder

        variants, run_seeds, table = ablation_variants(config, weight)[0], seeds or [training.seed], out.resolve()
        # the table inside a folder a variant trains into: a model folder then held the table (pushed
        # with it), and --overwrite cleared it with the variant's old files before it was written
        for i, (name, _) in enumerate(variants):
            for s in run_seeds:
                folder = variant_folder(args.work_dir, run_seeds, s, i, name).resolve()
                if table == folder or table in folder.parents:
                    # --output w/0-state-only (or w, or w/seed-1): a file where training makes that folder;
                    # the table failed to be written (a directory) after every variant had trained
                    raise ValueError(f"--output: {str(out)!r} is a folder --work-dir creates (variant {name} trains "
                                     f"into {str(folder)!r}); expected a file name outside the variant folders, "
                                     f"e.g. {str(Path(args.work_dir) / 'ablation.md')!r}")
                if folder in table.parents:
                    raise ValueError(f"--output: {str(out)!r} is inside {str(folder)!r}, the folder --work-dir trains "
                                     f"variant {name} into; write the table elsewhere, e.g. "
                                     f"{str(Path(args.work_dir) / out.name)!r}")
        try:
            check_variant_folders(args.work_dir, run_seeds, variants, args.overwrite)
        except (FileExistsError, PermissionError) as err:
            raise type(err)("--work-dir: " + str(err).removeprefix("output_dir: ").removeprefix("work_dir: ")) from None
    if out.suffix.lower() not in (".md", ".markdown"):  # --output abl.png wrote the markdown table into a .png
        raise ValueError(f"--output: this command writes a markdown table; expected a file name ending in .md, "
                         f"got {str(out)!r}")
    rec = _load_data(args.data, args.epoch, no_model_command="ablate")
    print(f"[neuroformer] data: {rec}")
    _check_config_modalities(config, rec, args)
    result = run_ablation(rec, config, training, work_dir=args.work_dir, seeds=seeds,
                          contrastive_loss_weight=weight, overwrite=args.overwrite,
                          # a diverged run's reason under the table said "lower learning_rate", which is no flag
                          learning_rate_option=_config_rate_field(args.config),
                          progress=True)  # a bar per variant, as train shows (TQDM_DISABLE=1 turns them off)
    seed_text = f"seeds {args.seeds}" if seeds else f"seed {training.seed}"
    header = (f"Ablation of {args.config} on {args.data or 'the built-in simulated recording'}"
              f"{f' (epoch {args.epoch})' if args.epoch else ''}: {training.max_steps} step{'' if training.max_steps == 1 else 's'} at most, batch "
              f"{training.batch_size}, {seed_text}; test split, {checkpoint_choice(result)}.\n")
    text = ablation_markdown(result, header)
    write_atomic(out, text, make_parent=True)  # a new folder passed check_writable_parent
    write_json(out.with_suffix(".json"), result)
    print(text)
    print(f"[neuroformer] wrote {out} and {out.with_suffix('.json')}")
    return 0


def cmd_push(args) -> int:
    """``neuroformer push``: upload a trained --model (and optionally its windows dataset) to --repo-id on the
    Hub, leaving the model directory as it is. Raises ValueError / FileNotFoundError naming the flag (a bad
    repository id, revision, license or model directory) or HubPushError (the Hub refused); status 2."""
    from .hub import auto_class_name, check_commit_message, check_dataset_with_subfolder, check_license, \
        check_model_dir, check_repo_id, check_revision, check_run_records, check_subfolder, check_unfinished_run, \
        kept_outside_model_folders, load_args, push_to_hub

    # fail on the arguments before loading anything or touching the network
    check_model_dir(args.model, "--model")
    check_unfinished_run(args.model, "--model")  # a killed --overwrite run: its model files are the earlier model
    check_run_records(args.model)  # --data reads splits.json below
    check_repo_id(args.repo_id, "--repo-id")
    check_revision(args.revision, "--revision")
    check_subfolder(args.subfolder, "--subfolder")
    check_license(args.license, "--license")
    check_commit_message(args.commit_message, "--commit-message")
    if (args.data is None) != (args.dataset_repo_id is None):
        raise ValueError("--data and --dataset-repo-id: give both to push the windows dataset, or neither")
    for flag, given in (("--epoch", args.epoch is not None), ("--num-shards", args.num_shards != 1)):
        if given and args.data is None:  # the model alone was pushed and the flag went unused
            raise ValueError(f"{flag}: applies to the windows dataset only; give --data and --dataset-repo-id to "
                             f"push the windows, or leave {flag} out")
    if args.dataset_repo_id is not None:
        check_repo_id(args.dataset_repo_id, "--dataset-repo-id")
        check_dataset_with_subfolder(args.subfolder, "--dataset-repo-id", "--subfolder")  # before --data is read
    if args.num_shards < 1:
        raise ValueError(f"--num-shards: expected an integer >= 1, got {args.num_shards}")
    rec = _load_data(args.data, args.epoch) if args.data is not None else None
    if rec is not None:
        # foreign units and splits outside the recording named by the flags (push_to_hub's own checks
        # speak to Python callers: "recording: ... (and epoch)"); its spike comparison is left to push_to_hub
        from .generation import check_recording_units
        from .tokenization_neuroformer import NeuroformerTokenizer
        from .windows import SPLITS, SplitPlan, check_split_in_recording

        check_recording_units(NeuroformerTokenizer.from_pretrained(args.model), rec, flag="--data")
        if (Path(args.model) / "splits.json").is_file():  # without it push_to_hub says what is missing
            plan = SplitPlan.read(Path(args.model) / "splits.json")
            for split in SPLITS:  # the windows pushed are the model's: every split must lie in the recording
                check_split_in_recording(plan, split, rec, flag="--data")
    result = push_to_hub(
        args.model, args.repo_id, private=args.private, revision=args.revision, commit_message=args.commit_message,
        license=args.license, data_description=args.provenance, recording=rec,
        dataset_repo_id=args.dataset_repo_id, num_shards=args.num_shards, replace_other=args.replace_other,
        subfolder=args.subfolder, allow_stale_metrics=args.allow_stale_metrics,
    )
    from .recording import count_noun

    if result.unchanged:
        print(f"[neuroformer] {result.repo_id} already holds these {count_noun(len(result.files), 'file')}; no new commit "
              f"({result.commit_url})")
    else:
        into = f" (folder {args.subfolder!r})" if args.subfolder else ""
        print(f"[neuroformer] pushed {count_noun(len(result.files), 'file')} to {result.repo_id}{into}: {result.commit_url}")
        if args.subfolder and "README.md" in result.files:  # the root had no README: a short one was written
            print(f"[neuroformer] {result.repo_id} had no README.md at its root: wrote one naming the folder "
                  f"{args.subfolder!r} (the model card is {args.subfolder}/README.md); later pushes into other folders "
                  "leave it as it is")
    for line in result.redacted:
        print(f"[neuroformer] local path not published: {line}")
    if result.kept_model_folders:  # models kept in folders on purpose: no advice to delete them
        print(f"[neuroformer] {count_noun(len(result.kept_model_folders), 'folder')} of {result.repo_id} holding a "
              f"model of its own (config.json) {'was' if len(result.kept_model_folders) == 1 else 'were'} left as "
              f"{'it was' if len(result.kept_model_folders) == 1 else 'they were'}: "
              f"{', '.join(f + '/' for f in result.kept_model_folders)}")
    stray = kept_outside_model_folders(result)
    if stray:
        were, stay, them, they = (("was", "stays", "it", "it belongs") if len(stray) == 1
                                  else ("were", "stay", "them", "they belong"))
        print(f"[neuroformer] {count_noun(len(stray), 'file')} already in {result.repo_id} {were} not written "
              f"by this push and {stay} there: {', '.join(stray)} (delete {them} on the Hub if {they} to another "
              "model)")
    if result.replaced_readme:  # the user's own README (not a card of this package) went without a word
        # on a branch (a new one starts from main's README) it is replaced there only: "of lab/x" read as main's
        branch = result.revision not in (None, "main")
        where = f" on branch {result.revision!r}" if branch else ""
        readme = f"{args.subfolder}/README.md" if args.subfolder else "README.md"
        print(f"[neuroformer] the {readme} of {result.repo_id}{where} was not a model card of hf_neuroformer and is "
              f"replaced by the model card{' on that branch only (main and the other branches keep theirs)' if branch else ''}; "
              f"the earlier one stays in the repository's history (commit {result.replaced_readme})")
    for line in result.edited_cards:  # a card edited on the Hub since the last push went without a word
        print(f"[neuroformer] {line}")
    if result.dataset_repo_id and result.dataset_unchanged:  # "pushed" claimed a commit that was not made
        print(f"[neuroformer] {result.dataset_repo_id} already holds these windows; no new commit "
              f"({result.dataset_commit_url})")
    elif result.dataset_repo_id:
        print(f"[neuroformer] pushed the windows dataset to {result.dataset_repo_id}: {result.dataset_commit_url}")
    if result.dataset_repo_id:  # capped as prepare caps it: said as prepare says it
        _note_capped_shards(args.num_shards, result.dataset_windows)
    print(f"[neuroformer] load it with {auto_class_name(args.model)}.from_pretrained("
          f"{load_args(result.repo_id, args.revision, subfolder=args.subfolder)})")
    if not (args.provenance or "").strip():  # the card was pushed without a word on the recording's source, and nothing said so
        licence = (" and its licence is 'other', naming none" if args.license == "other" else "")
        print(f"[neuroformer] note: no --provenance: the model card does not say where the recording comes from"
              f"{licence}; push again with --provenance \"lab, paper, licence\""
              f"{' and --license ID (e.g. cc-by-4.0)' if licence else ''} to add it (unchanged files are not "
              "uploaded again)")
    return 0


def cmd_simulate(args) -> int:
    """``neuroformer simulate``: simulate a network of --units with known directed wiring (--kind hub, hub-glm
    or glm) and write its spikes and ground truth to the .nwb --output. Raises ValueError naming the flag
    (bad numbers, a hub layout that does not fit, too little memory) or FileExistsError (status 2)."""
    import math

    # the numbers first, named by their flags (inf overflowed, -1 seeds named no flag, 1e9 s ran for ever), and the
    # flags of another kind: before numpy and the simulators are imported, which took seconds
    if args.seed < 0:
        raise ValueError(f"--seed: expected an integer >= 0 (numpy's default_rng), got {args.seed}")
    if args.kind == "hub" and args.seed > MAX_BRIAN2_SEED:
        raise ValueError(f"--seed: expected an integer in [0, {MAX_BRIAN2_SEED}] with --kind hub (brian2.seed seeds "
                         f"numpy's legacy generator), got {args.seed}")
    if not (math.isfinite(args.duration) and 0 < args.duration <= MAX_CLI_DURATION):
        raise ValueError(f"--duration: expected a finite number of seconds in (0, {MAX_CLI_DURATION:g}] "
                         f"(hf_neuroformer.simulation.MAX_CLI_DURATION; longer: call the simulator functions), "
                         f"got {args.duration:g}")
    if args.units < 2:  # a 1-unit glm network trained and scored to NaN everywhere without a word
        raise ValueError(f"--units: expected an integer >= 2 (a network with a directed edge to recover), got "
                         f"{args.units}")
    hub_flags = [f for f, v in (("--hubs", args.hubs), ("--targets-per-hub", args.targets_per_hub)) if v is not None]
    if args.kind == "glm" and hub_flags:  # they were silently ignored
        raise ValueError(f"{'/'.join(hub_flags)}: only for --kind hub or hub-glm; the glm kind has no hubs")
    if args.kind != "hub" and args.codegen is not None:  # it was silently ignored
        raise ValueError(f"--codegen: only for --kind hub (brian2); the {args.kind} kind is simulated in numpy")
    n_hubs = DEFAULT_N_HUBS if args.hubs is None else args.hubs
    if args.kind != "glm":  # the hub layout: it was refused only after the package's import (5 s, a minute under load)
        if args.targets_per_hub is not None and args.hubs == 0:  # it was silently ignored (and recorded)
            raise ValueError(f"--targets-per-hub: only with --hubs >= 1; --hubs 0 makes a network without hubs, "
                             f"so there is no hub to project onto {args.targets_per_hub} targets")
        check_hub_layout(args.units, n_hubs,
                         DEFAULT_TARGETS_PER_HUB if args.targets_per_hub is None else args.targets_per_hub)
    import numpy as np

    from .recording import count_noun
    from .simulation import HubNetworkParams, _check_simulation_memory, _whole_bins, simulate_coupled_network, \
        simulate_hub_glm, simulate_hub_network, write_network

    out = Path(args.output)
    _check_new_file(args.output, "--output", args.overwrite, suffix=".nwb")
    if args.kind == "glm":
        bin_size = 0.002  # simulate_coupled_network's default
    else:
        bin_size = HubNetworkParams.glm_bin_size if args.kind == "hub-glm" else HubNetworkParams.dt
    # the simulators' rounding (halves up, _whole_bins): round() refused --duration 0.001 at 2 ms bins,
    # which the glm kind simulates as one bin, as its help says ("round it to whole bins")
    if args.kind != "hub" and _whole_bins(args.duration, bin_size) < 1:
        raise ValueError(f"--duration: expected at least one simulation bin ({bin_size:g} s), got {args.duration:g}")
    params = None
    if args.kind != "glm":
        params = HubNetworkParams(n_units=args.units, n_hubs=n_hubs)
        if args.targets_per_hub is not None:
            params.targets_per_hub = args.targets_per_hub
        params.validate()
    # the simulators' own memory check (the wiring: --units 1000000 died in numpy's "Unable to allocate
    # 7.28 TiB"; the glm kind's drives; the hub kinds' spikes), named by flag, before brian2 is imported
    _check_simulation_memory(args.kind, args.units, args.duration, bin_size, n_assemblies=min(4, args.units),
                             params=params, units_flag="--units", duration_flag="--duration")
    if args.kind == "glm":
        net = simulate_coupled_network(n_units=args.units, duration=args.duration, seed=args.seed, progress=True)
    elif args.kind == "hub":
        net = simulate_hub_network(params, duration=args.duration, seed=args.seed,
                                   codegen_target=args.codegen or "numpy", progress=True)
    else:
        net = simulate_hub_glm(params, duration=args.duration, seed=args.seed, progress=True)
    write_network(net, out, overwrite=args.overwrite, make_parent=True)  # check_writable_parent passed it
    rec = net.recording
    off = ~np.eye(rec.n_units, dtype=bool)  # the glm kind's diagonal is each unit's self-history, not an edge
    n_exc, n_inh = int((net.weights[off] > 0).sum()), int((net.weights[off] < 0).sum())
    # the glm kinds simulate whole bins, the hub kind whole dt steps, and record that span as the
    # duration: the line says the file's figure
    span = float(rec.time_domain[1] - rec.time_domain[0]) if rec.time_domain is not None else args.duration
    step = "dt steps" if args.kind == "hub" else "bins"  # brian2 runs a last partial step in full
    rounded = (f" (--duration {args.duration:g} rounded to whole {bin_size:g}-s {step})"
               if abs(span - args.duration) > 1e-9 else "")
    print(f"[neuroformer] simulated {args.kind}: {count_noun(rec.n_units, 'unit')}, {count_noun(rec.n_spikes, 'spike')} "
          f"in {span:g} s{rounded} ({rec.n_spikes / rec.n_units / span:.2f} Hz mean), "
          f"{count_noun(n_exc + n_inh, 'directed edge')} "
          f"({n_exc} excitatory, {n_inh} inhibitory; connectivity scores the excitatory ones)"
          + (f", hubs {net.hub_units.tolist()}" if net.hub_units.size else "") + f"; wrote {out} (ground truth in scratch)")
    return 0


def cmd_render_gratings(args) -> int:
    """``neuroformer render-gratings``: render drifting-grating frames from each trial's orientation in --data
    and write the spikes and frames to the .nwb --output. Raises ValueError / FileNotFoundError /
    FileExistsError naming the flag (:func:`main` prints it, status 2)."""
    from .io import write_nwb
    from .stimuli import GratingParams, render_drifting_gratings

    out = Path(args.output)
    # --overwrite replaced the recording read (its frames lost) while the warning said "the input is unchanged"
    _check_not_an_input(args.output, "--output", {"--data": args.data})
    _check_new_file(args.output, "--output", args.overwrite, suffix=".nwb")
    params = GratingParams(frame_rate=args.frame_rate, frame_shape=(args.height, args.width),
                           field_of_view=(args.fov_height, args.fov_width), spatial_frequency=args.spatial_frequency,
                           temporal_frequency=args.temporal_frequency, contrast=args.contrast)
    # the numbers before the recording is read: --frame-rate 0 or --contrast 2 was refused only after
    # reading --data (about 20 s for ../shared/data/allen_vcn_gratings)
    params.validate()
    rec = _load_data(args.data, None, no_model_command="render-gratings")
    if rec.trials is None or len(rec.trials) == 0:  # "--column: ... (trial columns: [])" named a flag no value fixes
        raise ValueError(f"--data: {str(args.data)!r} has no trials; render-gratings draws each trial's grating from "
                         f"its orientation (--column, default orientation_deg): pass a recording with trials, e.g. "
                         "../shared/data/allen_vcn_gratings")
    rec = render_drifting_gratings(rec, column=args.column, params=params)
    write_nwb(rec, out, overwrite=args.overwrite, make_parent=True)  # _check_new_file's check_writable_parent passed it
    f = rec.stimulus.frames
    from .recording import count_noun

    print(f"[neuroformer] rendered {count_noun(f.shape[0], 'frame')} of {f.shape[1]}x{f.shape[2]} px at {args.frame_rate:g} Hz; "
          f"wrote {out}\n  {rec.stimulus.description}")
    return 0


def cmd_connectivity(args) -> int:
    """``neuroformer connectivity``: score a trained --model's attention, with correlation, CCG and GLM
    estimates, against the ground truth of a simulated --data; writes one .npy per matrix, scores.json and
    connectivity.png into --output. Raises ValueError / FileNotFoundError / FileExistsError naming the flag."""
    import math

    # the counts before torch is imported; the device once it is
    check_pass_counts(batch_size=args.batch_size, max_windows=args.max_windows, label=_flag)
    from .analysis._batches import check_pass_settings
    from .analysis.connectivity import CONNECTIVITY_OUTPUT, control_note, run_connectivity
    from .io import check_input_exists
    from .recording import count_noun
    from .io.output_folder import check_output_folder

    check_pass_settings(batch_size=args.batch_size, max_windows=args.max_windows, device=args.device, label=_flag)
    # the output first (before any work, as run_connectivity does), then a mistyped --data worded as every other
    # command's (it said 'data_path (--data): NWB file not found: ...')
    check_output_folder(args.output, CONNECTIVITY_OUTPUT, overwrite=args.overwrite)
    check_input_exists(args.data, "--data")
    report = run_connectivity(args.model, args.data, args.output, split=args.split, max_windows=args.max_windows,
                              bin_size=args.bin_size, corr_bin_size=args.corr_bin_size, device=args.device,
                              batch_size=args.batch_size, overwrite=args.overwrite, label=_flag,
                              learning_rate_option=TRAIN_RATE_FIELD)
    print(f"[neuroformer] wrote {args.output}/ (matrices .npy, scores.json, connectivity.png)")

    def num(v):  # undefined scores: 'n/a', with the reason printed below (null in scores.json)
        return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"

    for name, sc in report["scores"].items():
        if sc.get("unmeasured_reason"):  # a matrix of no measurement printed chance (AUROC 0.500) as if measured
            print(f"  {name:<22s} AUROC / AUPRC / direction n/a ({sc['unmeasured_reason']})")
            continue
        # direction(all excitatory): a network without hubs (--kind glm) printed no directed score at all
        print(f"  {name:<22s} AUROC(hub) {num(sc['hub_auroc'])}  AUPRC(hub) {num(sc['hub_auprc'])}  "
              f"direction(hub) {num(sc['hub_direction_accuracy'])}  AUROC(all excitatory) {num(sc['auroc'])}  "
              f"direction(all excitatory) {num(sc['direction_accuracy'])}")
    truth = report["scores"]["truth"]
    if truth.get("hub_reason"):
        print(f"  note: the hub scores are undefined (n/a; null in scores.json, with hub_reason): "
              f"{truth['hub_reason']}")
    if truth.get("reason"):
        print(f"  note: AUROC / AUPRC (all excitatory) are undefined (n/a; null in scores.json, with reason): "
              f"{truth['reason']}")
    if report["unmeasured_estimates"]:
        n = report['n_unmeasured_estimates']
        print(f"  note: {count_noun(n, 'estimate')} {'holds' if n == 1 else 'hold'} no measurement, so "
              f"{'its' if n == 1 else 'their'} scores are n/a "
              f"(null in scores.json, with unmeasured_reason): {', '.join(report['unmeasured_estimates'])}")
    if report["glm_seconds_fitted"] < report["glm_seconds_binned"]:  # glm_max_bins: it was said nowhere
        print(f"  note: glm was fitted on the first {report['glm_seconds_fitted']:g} s of the "
              f"{report['glm_seconds_binned']:g} s analysed (until {report['glm_fitted_until_s']:g} s; at most "
              f"{report['glm_max_bins']} bins of {report['bin_size_s']:g} s); the other methods see all of it")
    silent = report["units_without_spikes"]
    if silent:
        one = len(silent) == 1
        print(f"  note: {count_noun(len(silent), 'unit')} {'fires' if one else 'fire'} no spike in the current windows "
              f"the attention queries (unit{'' if one else 's'} {silent[:20]}{' ...' if len(silent) > 20 else ''}): "
              f"{'its attention row is' if one else 'their attention rows are'} 0 (no query predicts "
              f"{'it' if one else 'them'}); {'its' if one else 'their'} "
              f"{count_noun(report['n_excitatory_edges_of_silent_units'], 'excitatory edge')} "
              f"({count_noun(report['n_hub_edges_of_silent_units'], 'hub edge')}) "
              f"{'is' if report['n_excitatory_edges_of_silent_units'] == 1 else 'are'} still scored")
    # hub AUPRC (all-excitatory without hub edges) of the learned attention against the uniform control;
    # the chance case says so (the control at the share of true edges carries no signal)
    note = control_note(report["scores"])
    if note is not None:
        print(f"  note: {note}")
    return 0


def _unit_list(text: str):
    """argparse ``type`` of ``--units``: ``[int, ...]`` from ``3,17``.

    Raises:
        argparse.ArgumentTypeError: an empty item, an item that is not an integer, or a unit named
            twice (``3,3``: the selection would count its spikes once anyway, so a repeat is a typo).
    """
    try:
        items = _comma_items(text, None, "unit indices", "3,17")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    try:
        units = [int(u) for u in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated unit indices such as 3,17, got {text!r}") from None
    repeated = sorted({u for u in units if units.count(u) > 1})
    if repeated:
        which = f"unit {repeated[0]}" if len(repeated) == 1 else f"units {', '.join(map(str, repeated))}"
        raise argparse.ArgumentTypeError(f"expected distinct unit indices, got {text!r} ({which} more than once)")
    return units


def cmd_attention_map(args) -> int:
    """``neuroformer attention-map``: a video-conditioned --model's attention of spike tokens over the frames,
    mapped onto pixels; writes the figure --output with its arrays (.npy) and a .json beside it.
    Raises ValueError / FileNotFoundError / FileExistsError naming the flag (:func:`main` prints it, status 2)."""
    # the counts before torch is imported; the device once it is
    check_pass_counts(batch_size=args.batch_size, max_windows=args.max_windows, label=_flag)
    from .analysis._batches import check_pass_settings
    from .analysis.visual_attention import run_attention_map

    check_pass_settings(batch_size=args.batch_size, max_windows=args.max_windows, device=args.device, label=_flag)
    if args.window_index is not None and args.window_index < 0:  # the library's "... or None" means nothing here
        raise ValueError(f"--window-index: expected an integer >= 0 (an index into the split's windows in time "
                         f"order), got {args.window_index}; leave it out for the mean over the windows")
    out = Path(args.output)  # the figure and, beside it, the .json (the .npy names are no model file)
    for path, flag in ((out, "--output"), (out.with_suffix(".json"), "--output (.json beside it)")):
        _check_not_a_model_file(path, flag, args.model)
    rep = run_attention_map(args.model, args.data, args.output, units=args.units, window_index=args.window_index,
                            split=args.split, max_windows=args.max_windows, modality=args.modality,
                            batch_size=args.batch_size, device=args.device, overwrite=args.overwrite,
                            learning_rate_option=TRAIN_RATE_FIELD)
    sel = "population" if args.units is None else f"units {args.units}"
    share = rep["mean_video_share"]
    corr = rep["mean_patch_luminance_correlation_raw"]
    print(f"[neuroformer] visual attention of the {sel} over {rep['modality']!r}: {rep['n_queries']} spike "
          f"token{'' if rep['n_queries'] == 1 else 's'} in "
          f"{rep['n_windows_with_queries']}/{rep['n_windows']} {rep['split']} windows; attention on the video "
          f"{share['raw']:.3f} (raw) / {share['rollout']:.3f} (rollout) of each query's total; patch attention vs "
          f"luminance r = {'n/a' if corr is None else f'{corr:+.3f}'}"
          + (f" ({rep['mean_patch_luminance_correlation_raw_reason']})"
             if rep.get("mean_patch_luminance_correlation_raw_reason") else ""))
    if rep["n_windows_without_frames"]:
        k = rep["n_windows_without_frames"]
        print(f"[neuroformer] {k} of the {rep['n_windows']} windows hold no frame of {rep['modality']!r} on screen "
              "(the video does not cover them): their spike tokens attend to no frame and are left out of the maps")
    beside = [str(out.parent / v) for k, v in rep["files"].items() if k != "figure"]  # bare names hid the folder
    print(f"[neuroformer] wrote {args.output} and {', '.join(beside)}")
    return 0


def _version_literal(package: str, file: str) -> Optional[str]:
    """The ``__version__ = "..."`` literal in ``file`` of the top-level package ``package``, read
    without importing the package (seconds of start-up for torch; found, not run); None where the
    package is not found or the file holds no such literal."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(package)  # a top-level name: found, not run
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        tree = ast.parse((Path(next(iter(spec.submodule_search_locations))) / file).read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:  # __version__ = '2.6.0+cu124' (or __version__: str = ...)
        names = [getattr(t, "id", None) for t in getattr(node, "targets", [getattr(node, "target", None)])]
        value = getattr(node, "value", None)
        if names == ["__version__"] and isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
    return None


def _torch_version() -> str:
    """``torch.__version__`` without importing torch (seconds of start-up): the literal in
    torch/version.py, which names the build (2.6.0+cu124; PyPI's metadata says 2.6.0); the
    distribution's metadata where that file holds none.

    Raises:
        importlib.metadata.PackageNotFoundError: torch is not installed.
    """
    from importlib.metadata import version

    if "torch" in sys.modules:
        return sys.modules["torch"].__version__
    return _version_literal("torch", "version.py") or version("torch")


def _version_line() -> str:
    """``hf_neuroformer X (torch Y, transformers Z, ...)``: what a bug report needs (torch with its
    build, ``+cpu`` or ``+cu124``; numpy too: its version decides whether brian2 imports, see setup.py).
    Imports none of them (``neuroformer --version`` answers at once): the package's version is the
    ``__version__`` of the code running, read from its ``__init__.py`` unless the package is imported
    (the installed distribution's metadata named another release where a source tree of another
    version came first on the path)."""
    from importlib.metadata import PackageNotFoundError, version

    package = sys.modules.get(__package__)
    ours = package.__version__ if package is not None else _version_literal(__package__, "__init__.py")
    if ours is None:
        from . import __version__ as ours
    libs = []
    for name in ("torch", "transformers", "accelerate", "datasets", "huggingface_hub", "pynwb", "numpy"):
        try:
            libs.append(f"{name} {_torch_version() if name == 'torch' else version(name)}")
        except PackageNotFoundError:
            libs.append(f"{name} not installed")
    return f"hf_neuroformer {ours} ({', '.join(libs)}; Python {sys.version.split()[0]})"


class _VersionAction(argparse.Action):
    """``--version``: :func:`_version_line` on one line (argparse's own action wraps it to the
    terminal width), then exit 0."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version_line())
        parser.exit()


#: --epoch's help, for every command that reads a recording
EPOCH_WHAT = ("restrict the recording to this named epoch / interval (e.g. wake); an interval table of many rows "
              "(e.g. sleep_ripples) selects their union")
#: --epoch of the commands that read a trained --model
EPOCH_HELP = EPOCH_WHAT + "; give the epoch the model was trained on"


CI_HELP = ("length (s, > 0) of the blocks of consecutive test windows that the 95%% block-bootstrap intervals "
           "resample in a time split (a trial split's blocks are its trials); fewer than 5 blocks give no interval, "
           "with a reason naming a shorter length that gives 5 (default: 10; recorded as ci95_block_s)")


def _add_overwrite(parser, help: str = "replace output files that already exist (refused without it)") -> None:
    """The ``--overwrite`` flag of a command (``help``: what it replaces)."""
    parser.add_argument("--overwrite", action="store_true", help=help)


class _Subcommands(argparse._SubParsersAction):
    """The subcommands action: arguments the chosen command does not know are refused by that command's
    parser (``neuroformer train: error: unrecognized arguments: --max-step 5; did you mean '--max-steps'?``).
    argparse hands them back to the top-level parser, which named no command
    (``neuroformer: error: ...``) and could suggest no flag."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        # argparse parks the command's unknown arguments on the namespace for the top level to refuse
        # (a private name of argparse, "_unrecognized_args" in 3.10-3.13; if it ever goes, the top level refuses them)
        extras = getattr(namespace, getattr(argparse, "_UNRECOGNIZED_ARGS_ATTR", "_unrecognized_args"), None)
        if extras:
            self.choices[values[0]].error(_unrecognized(self.choices[values[0]], extras))


def _unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """argparse's 'unrecognized arguments: ...', with the closest flags of ``parser`` (difflib) for each
    unknown flag among ``extras`` (``--dat=x`` is compared as ``--dat``); none when no flag is close."""
    import difflib

    message = f"unrecognized arguments: {' '.join(extras)}"
    # compared without the '--' every flag shares ('--bogus' was close to '--no-figures')
    names = [s[2:] for s in parser._option_string_actions if s.startswith("--")]
    unknown = [a.split("=", 1)[0] for a in extras if a.startswith("--")]
    hints = [(flag, [f"--{n}" for n in difflib.get_close_matches(flag[2:], names, n=3)]) for flag in unknown]
    hints = [(flag, close) for flag, close in hints if close]
    if len(unknown) == 1 and hints:
        message += f"; did you mean {' or '.join(map(repr, hints[0][1]))}?"
    elif hints:
        message += "; did you mean " + ", ".join(f"{' or '.join(map(repr, close))} for {flag!r}"
                                                  for flag, close in hints) + "?"
    return message


class _GiveUp(Exception):
    """A usage error met while :meth:`_Parser._unknown_beside_required` parses again: no extras to add."""


class _Parser(argparse.ArgumentParser):
    """The command's parsers: no abbreviated flags (``--max-step 5`` ran as ``--max-steps 5``, and a
    prefix of one flag would silently become another once a flag is added), a misspelt command
    is answered with the closest ones (difflib), and a command's usage errors are its own
    (``neuroformer train: error: ...``), an unknown flag answered with the closest flags of that command,
    also when a required flag is missing too (``finetune --modle runs/x --target x``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)
        # argparse reads a value starting with '-' as a flag unless it is a plain -1 or -0.5: '--bin-size -1e-3',
        # '--temperature -inf' were answered 'argument --bin-size: expected one argument', as if no value
        # had been given, never reaching the check that names what the value should be. Every number
        # float() reads is a value now (no flag of this command line looks like one), and so is a comma list
        # of them that starts with one ('--units -1,3', '--seeds -1,2': refused by their checks, by name)
        number = r"(?:(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|inf|infinity|nan)"
        self._negative_number_matcher = re.compile(rf"^-{number}(?:,\s*(?:-?{number})?)*$", re.IGNORECASE)
        self._args_seen = None  # what parse_known_args was given, for error()
        self._reparsing = False

    def parse_known_args(self, args=None, namespace=None):
        self._args_seen = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def _unknown_beside_required(self) -> list[str]:
        """The arguments this parser does not know among those it was given, found by parsing them again
        with no flag required: argparse checks the required flags first, so ``finetune --modle runs/x
        --target x`` was answered 'required: --model' alone and the misspelt ``--modle`` only on the
        next try. ``[]`` when there are none, or when parsing again meets another usage error."""
        if self._args_seen is None or self._reparsing:
            return []
        required = [a for a in self._actions if a.required]
        self._reparsing = True
        try:
            for a in required:
                a.required = False
            return super().parse_known_args(self._args_seen)[1]
        except _GiveUp:
            return []
        finally:
            for a in required:
                a.required = True
            self._reparsing = False

    def error(self, message):
        import difflib
        import re

        if self._reparsing:  # another usage error while looking for unknown flags: the first one is reported
            raise _GiveUp(message)
        if message.startswith("the following arguments are required: "):
            extras = self._unknown_beside_required()
            if extras:  # both at once (the unknown flag first): fixing one no longer leads to the other
                unknown = _unrecognized(self, extras)
                message = f"{unknown}{' And' if unknown.endswith('?') else '; and'} {message}"
        bad = re.match(r"argument command: invalid choice: '([^']*)'", message)
        sub = next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
        if bad is not None and sub is not None:
            close = difflib.get_close_matches(bad.group(1), list(sub.choices), n=3)
            if close:
                message += f"; did you mean {' or '.join(map(repr, close))}?"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="neuroformer", description="Neuroformer: generative pretraining on spike trains")
    p.add_argument("--version", action=_VersionAction,
                   help="print the package version and those of the libraries it runs on, then exit")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="pretrain on a recording and write the model and test metrics",
                       description="Pretrains a Neuroformer on the spikes of a recording (next spike: unit id and dt, in seconds) over "
                       "windows split into train / validation / test by contiguous time blocks or whole trials, "
                       "selects on validation and scores the test split once. Reads --data (default: the built-in "
                       "simulated network) and --config; writes into --output-dir the model (config.json, "
                       "model.safetensors, tokenizer), metrics.json (test unit-id and dt NLLs), splits.json, "
                       "training_log.json, training_config.json and figures (not with --no-figures). Example: "
                       "neuroformer train --data "
                       "rec.nwb --epoch wake --output-dir runs/rec")
    t.add_argument("--config", help="YAML file: NeuroformerConfig fields, plus an optional 'training:' section "
                   "(default: NeuroformerConfig's defaults, as in configs/default.yaml)")
    t.add_argument("--data", help="recording (.nwb, .npz, .csv/.parquet with one row per spike, columns time (s) and unit, "
                   ".mat binned counts, Allen, nelpy or "
                   "Kilosort / Phy folder, or a 'neuroformer prepare' directory, whose windows are then streamed); "
                                  "default: the built-in simulated network")
    t.add_argument("--epoch", help="restrict to this named epoch / interval of the recording (e.g. wake)")
    t.add_argument("--output-dir", default="neuroformer-model", help="where the model goes (default: %(default)s)")
    t.add_argument("--max-steps", type=int, help="optimisation steps at most (default: the config's "
                   "training.max_steps, 3000); training ends at whichever of --max-steps and --max-epochs comes first")
    t.add_argument("--max-epochs", type=int, help="passes over the training windows at most (default: the config's "
                   "training.max_epochs, 12)")
    t.add_argument("--seed", type=int, help="seed of initialisation, shuffling, dropout and test-split sampling "
                   "(default: the config's training.seed, 0)")
    t.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"],
                   help="bf16 on CPUs and recent GPUs; fp16 (GPU only) with Accelerate's loss scaling (default: the "
                        "config's training.mixed_precision, no = float32, or accelerate launch --mixed_precision; "
                        "an explicit no under a launcher's bf16 / fp16 is refused)")
    t.add_argument("--batch-size", type=int, help="windows per optimisation step, over all processes (default: the "
                   "config's training.batch_size, 32)")
    t.add_argument("--gradient-accumulation-steps", type=int,
                   help="micro-batches per optimisation step (each process loads batch-size / (N * processes); "
                        "default: the config's training.gradient_accumulation_steps, 1)")
    t.add_argument("--save-every", type=int, help="write a resumable checkpoint to --output-dir/checkpoints every N "
                   "steps (default: the config's training.save_every, none: no checkpoints, so no --resume)")
    t.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in --output-dir/checkpoints (same config and launch), with its "
                        "training settings except the flags and --config training: fields given; "
                        "a finished run is extended with a larger --max-steps (its model replaced at the end), and has "
                        "nothing to do at its own --max-steps")
    t.add_argument("--attn-implementation", choices=["sdpa", "eager", "flash_attention_2"],
                   help="attention kernels: sdpa (default; fused kernels where torch has them) or eager (needed for "
                        "attention maps); flash_attention_2 is refused with its reason (flash-attn kernels do not take "
                        "this model's masks yet)")
    t.add_argument("--activation-checkpointing", action="store_true",
                   help="recompute activations in the backward pass (less memory, more compute)")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (training.torch_compile_backend)")
    t.add_argument("--no-test-generation", action="store_true",
                   help="do not generate the test split after training (training.generate_test false): no fidelity "
                        "metrics and no test_generation.png, the test losses and baselines as always; 'neuroformer "
                        "generate' and 'neuroformer evaluate' score the model later")
    t.add_argument("--ci-block-s", type=float, metavar="S", help=CI_HELP)
    t.add_argument("--no-figures", action="store_true",
                   help="draw no figures: training_curves.png and test_generation.png are not written (train(..., "
                        "write_figures=False)); the metrics and every other file as always")
    _add_overwrite(t, "replace a model (and checkpoints) already in --output-dir")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="sample spikes for the windows of a split and write them to NWB",
                       description="Samples spike trains (unit id and dt, times in seconds) with a model written by 'neuroformer train' "
                       "for the windows of one split of --data (the splits the model recorded in splits.json), with "
                       "the past window from the recording or from the spikes generated before it, and writes them, "
                       "with the sampler's settings, to one .nwb file (one per sample with --num-samples) for 'neuroformer evaluate'. Example: neuroformer "
                       "generate --model runs/rec --data rec.nwb --output runs/rec/gen.nwb")
    g.add_argument("--model", required=True, help="directory written by 'neuroformer train'")
    g.add_argument("--data", help="the recording the model was trained on (default: built-in simulated)")
    g.add_argument("--epoch", help=EPOCH_HELP)
    g.add_argument("--output", required=True, help="output .nwb file")
    g.add_argument("--split", default="test", choices=["train", "validation", "test"],
                   help="whose windows to generate, from the model's splits.json (default: test)")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    g.add_argument("--temperature", type=float, default=1.0,
                   help="unit-id sampling temperature (> 0; default 1: the model's distribution)")
    g.add_argument("--top-p", type=float, default=1.0,
                   help="unit-id nucleus sampling: keep the most probable units up to this total probability "
                        "(0 < P <= 1; default 1: all)")
    g.add_argument("--top-k", type=int, default=0,
                   help="unit-id sampling from the K most probable tokens only, and those tied with the K-th "
                        "(default 0: all)")
    g.add_argument("--dt-temperature", type=float, help="dt head temperature (default: --temperature)")
    g.add_argument("--dt-top-p", type=float, help="dt head top-p (default: --top-p)")
    g.add_argument("--dt-top-k", type=int, help="dt head top-k (default: --top-k)")
    g.add_argument("--mode", default="teacher_forced", choices=["teacher_forced", "free_running"],
                   help="past window from the recording, or from the spikes generated before it (default: %(default)s)")
    g.add_argument("--order", default="free", choices=["free", "canonical"],
                   help="order of spikes inside a dt bin: free, or the tokenizer's (unit token id), which is the "
                        "sampler whose probabilities bits/spike scores (default: %(default)s)")
    g.add_argument("--batch-size", type=int, default=256,
                   help="windows generated in parallel; the samples depend on it (the same --seed with another "
                        "--batch-size gives other spikes), so it is recorded in the file (default: %(default)s)")
    g.add_argument("--max-spikes", type=int,
                   help="cap on spikes per generated window, 1 .. the model's max_window_length - 1 (default: "
                        "the latter); capped windows are counted in the summary line")
    g.add_argument("--greedy", action="store_true",
                   help="take the most likely unit and dt at every token instead of sampling (the temperatures, "
                        "top-k and top-p are then not used); recorded in the file")
    g.add_argument("--num-samples", type=int, default=1, metavar="N",
                   help="independent samples of every window, generated in the same batches; N > 1 writes one file "
                        "per sample beside --output, named <stem>-sample<r>.nwb (r = 0 .. N-1; --output itself is not "
                        "written; sample files of --output that the run does not write, left by an earlier run, are "
                        "named in a warning), each for 'neuroformer evaluate'; refused with --greedy, and where N x the split's "
                        f"windows is over {MAX_GENERATED_WINDOWS} (every sample is held in memory until written: "
                        "make more in several runs with other --seed and --output) (default: 1)")
    _add_overwrite(g)
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="compare a generated recording with the real one",
                       description="Compares a recording written by 'neuroformer generate' with the real one over the windows it "
                       "covers: firing rates (Hz), ISI distributions (KS), Fano factors, pairwise correlations, PSTHs "
                       "of trials, spike-timing F1; with --model also the model's held-out bits per spike. Prints the "
                       "main metrics; --output writes all of them as JSON, --figure rasters and PSTHs. Example: "
                       "neuroformer evaluate --real rec.nwb --generated runs/rec/gen.nwb --output runs/rec/eval.json")
    e.add_argument("--real", help="the real recording (default: built-in simulated)")
    e.add_argument("--epoch", help=EPOCH_HELP)
    e.add_argument("--generated", required=True, help=".nwb written by 'neuroformer generate'")
    e.add_argument("--model", help="also score this model's held-out bits per spike on --real (its --split windows) "
                                   "against Poisson units at train-split rates and at the scored windows' rates; its "
                                   "config also gives the ISI KS floor's dt grid when --generated does not record it")
    e.add_argument("--split", choices=["train", "validation", "test"],
                   help="with --model: windows scored for bits per spike (default: the split the --generated file "
                        "was generated from, as generate recorded it; test for a file that does not record it); "
                        "refused without --model")
    e.add_argument("--ci-block-s", type=float, metavar="S",
                   help="with --model: " + CI_HELP.replace("test windows", "scored windows")
                   .replace("as ci95_block_s", "as bits_per_spike_ci95_block_s"))
    e.add_argument("--output", help="write the metrics as JSON to this .json file")
    e.add_argument("--figure", help="write the rasters/PSTH figure here (PNG; default: --output with .png, "
                                    "no figure without either or with --no-figures)")
    e.add_argument("--no-figures", action="store_true",
                   help="draw no figure: --output writes the metrics JSON alone, without the figure beside it (an "
                        "earlier figure of that name is left as it is, named in a warning); refused with --figure")
    e.add_argument("--bin-size", type=float,
                   help="bin width for count correlations, Fano factors and pairwise correlations, s; a given one "
                        "must fit at least 3 bins in the generated windows (default: 0.1; when it does not fit, a note "
                        "names the metrics left undefined)")
    e.add_argument("--psth-bin-size", type=float,
                   help="PSTH bin width, s; a given one must fit at least 3 bins in the covered trials (default: 0.01)")
    e.add_argument("--min-isis", type=int, default=20,
                   help="fewest ISIs a unit needs on both sides for its KS statistic (default: %(default)s)")
    e.add_argument("--timing-tolerances", metavar="S,S,...",
                   help="coincidence windows of the spike-timing F1, s (each from 0.0001 up to, not including, 1 s), comma-separated: a generated "
                        "spike matches a recorded spike of the same unit at most this far away (default: "
                        "0.005,0.01,0.025)")
    e.add_argument("--timing-chance-draws", type=int, metavar="N",
                   help="seeded random draws each chance level of the spike-timing F1 pools (>= 1); the SD of a "
                        "single draw's level over them is printed beside it and written as ..._sd (default: 3)")
    e.add_argument("--min-trial-coverage", type=float, metavar="F",
                   help="fraction of a trial the generated windows must cover for the PSTH to use it (default: "
                        "0.95; generation tiles a trial with whole windows: 30 ms windows cover 0.9 of a 100 ms trial)")
    _add_overwrite(e)
    e.set_defaults(func=cmd_evaluate)

    i = sub.add_parser("inspect", help="what a recording holds (units, rates, epochs, trials, behaviour) and how "
                       "many spikes training's windows would hold and cut",
                       description="Reads a recording and prints what it holds: units and firing rates (Hz), epochs, trial columns, "
                       "behaviour series, and per split the spikes per current / past window against the token "
                       "budget of --config (spikes beyond it are cut), and why training would refuse it. Writes "
                       "nothing unless --output (JSON) or --figure is given. Example: neuroformer inspect --data "
                       "rec.nwb --epoch wake --output rec.json")
    i.add_argument("--data", help="recording, any format 'train --data' reads, except a 'neuroformer prepare' directory "
                                  "(windows, not a recording: give the recording it was prepared from; default: "
                                  "built-in simulated)")
    i.add_argument("--epoch", help=EPOCH_WHAT)
    i.add_argument("--config", help="YAML file of the settings the windows are judged by (NeuroformerConfig fields, "
                   "as for train; default: the defaults train would use)")
    i.add_argument("--output", help="also write the summary (per-unit rates too) to this JSON file")
    i.add_argument("--figure", help="also draw a raster, the firing rates and the spikes per window (PNG, PDF, ...)")
    _add_overwrite(i, "replace --output / --figure if they exist")
    i.set_defaults(func=cmd_inspect)

    r = sub.add_parser("prepare", help="write the windows of every split as sharded Parquet for streamed training",
                       description="Cuts a recording into the windows of every split (train, validation, test) with the window, "
                       "split and tokenizer settings of --config, and writes them as Parquet shards plus "
                       "manifest.json into a new --output directory, which 'neuroformer train --data DIR' streams "
                       "(for recordings larger than memory). Example: neuroformer prepare --data rec.nwb --output "
                       "prep/ --num-shards 4")
    r.add_argument("--config", help="YAML file: window, split and tokenizer settings (NeuroformerConfig fields; "
                   "default: the defaults train would use); its training: section is not kept: give train the "
                   "--config too")
    r.add_argument("--data", help="recording (default: built-in simulated)")
    r.add_argument("--epoch", help=EPOCH_WHAT + "; the windows are fixed here ('train --data DIR' refuses --epoch)")
    r.add_argument("--output", required=True, help="new directory for the shards and manifest.json")
    r.add_argument("--num-shards", type=int, default=1, help="Parquet shards per split (default: %(default)s)")
    _add_overwrite(r)
    r.set_defaults(func=cmd_prepare)

    f = sub.add_parser("finetune", help="fine-tune a pretrained model to decode behaviour (Trainer) and score the test split",
                       description="Fine-tunes a model written by 'neuroformer train' (or, with --from-scratch, the same architecture "
                       "with random weights) to decode behaviour variables or trial columns of --data from the spikes "
                       "of each window, on the model's own splits; selects the checkpoint on validation and scores the "
                       "test split (R², balanced accuracy, angular error in rad). Writes the decoder, metrics.json, "
                       "decoding_report.json, test_predictions.csv and test_decoding.png (not with --no-figures) "
                       "into --output-dir. Example: neuroformer finetune --model runs/rec --data rec.nwb --target head_direction "
                       "--output-dir runs/rec-hd")
    f.add_argument("--model", required=True, help="directory written by 'neuroformer train'")
    f.add_argument("--from-scratch", action="store_true",
                   help="same architecture, tokenizer and splits as --model, random weights (baseline for few-shot)")
    f.add_argument("--data", help="the recording with the behaviour to decode (not given: the built-in simulated "
                                  "recording, which holds no behaviour, so finetune refuses it)")
    f.add_argument("--epoch", help="restrict to this named epoch / interval (e.g. wake)")
    f.add_argument("--target", required=True, action="append",
                   help="behaviour variable(s) to decode, comma-separated (or --target repeated); trial columns as "
                        "trial:<column>; a 2-D series (e.g. position, (n, 2)) decodes every column, as targets "
                        "position[0], position[1] (metrics position[0]/r2 ...), or one column as 'position[1]'")
    f.add_argument("--kind", action="append",
                   help="regression|classification|circular, one per --target item (a 2-D series' kind applies to "
                        "each of its columns), comma-separated or repeated like --target "
                        "(default: trial columns classification, series in rad circular, else regression); refused "
                        "where the values do not fit: circular needs angles in radians (not whole-number class labels), "
                        "classification whole-number labels; a constant or all-NaN target is refused whatever its kind")
    f.add_argument("--fraction", type=float, default=1.0,
                   help="share of the training windows, first contiguous block in time (default: %(default)s)")
    f.add_argument("--output-dir", default="neuroformer-decoder", help="where the model goes (default: %(default)s)")
    f.add_argument("--max-steps", type=int, default=500, help="optimizer steps (default: 500)")
    f.add_argument("--seed", type=int, default=0, help="seed of the new heads, shuffling and dropout (default: 0)")
    f.add_argument("--batch-size", type=int, default=32, help="windows per optimisation step (default: %(default)s)")
    f.add_argument("--gradient-accumulation-steps", type=int, default=1,
                   help="micro-batches per optimizer step; --batch-size is the total (default: 1)")
    f.add_argument("--learning-rate", type=float, default=5e-4, help="AdamW learning rate (default: 5e-4)")
    f.add_argument("--eval-steps", type=int, help="validate (and keep the best checkpoint) every N steps "
                                                  "(default: max-steps / 10)")
    f.add_argument("--generative-loss-weight", type=float, default=0.0,
                   help="weight of the next-spike loss kept as an auxiliary term (default: %(default)s)")
    f.add_argument("--freeze-backbone-steps", type=int, default=0, metavar="N",
                   help="train only the new decoding heads (and attentive read-out) for the first N steps, the "
                        "pretrained backbone frozen, then everything (linear probing then fine-tuning); N = "
                        "--max-steps keeps the backbone as pretrained (default: 0)")
    f.add_argument("--ema-decay", type=float, default=None, metavar="D",
                   help="validate, select and save an exponential moving average of the weights over the steps with "
                        "this decay per step, in (0, 1) (Polyak averaging; 0.99 ~ the last 100 steps); training itself "
                        "is unchanged (default: off)")
    f.add_argument("--spike-dropout", type=float, default=0.0, metavar="P",
                   help="augment the training windows: in every training batch drop each spike token of the current "
                        "and past windows independently with probability P, in [0, 1), drawn anew each time a window "
                        "is used; validation, test and the baselines see the windows whole; recorded in metrics.json "
                        "(training.spike_dropout, spike_dropout_tokens) (default: 0, off)")
    f.add_argument("--regression-loss", choices=REGRESSION_LOSSES, default="mse",
                   help="loss of every regression target: mse on the standardised value, or hl_gauss, cross-entropy "
                        "over --num-bins value bins against a Gaussian of --hl-gauss-sigma-ratio bin widths around "
                        "it, predicting the expected bin centre (DecodingTarget(loss='hl_gauss'); plan 9 of "
                        "BENCHMARKS.md); hl_gauss is refused without a regression target (default: %(default)s)")
    f.add_argument("--num-bins", type=int, metavar="K",
                   help="required with --regression-loss hl_gauss (no default): value bins, an integer >= 2 "
                        "(plan 9: 64)")
    f.add_argument("--hl-gauss-sigma-ratio", type=float, metavar="R",
                   help="required with --regression-loss hl_gauss (no default): the Gaussian's sigma in bin widths, "
                        "> 0 (plan 9: 0.75)")
    f.add_argument("--class-weight", choices=("balanced", "none"), default="balanced",
                   help="classification targets: cross-entropy weighted by n / (k * n_c) over the training windows "
                        "(scikit-learn's 'balanced', as the baselines), or unweighted (default: %(default)s)")
    f.add_argument("--select-on", default="auto",
                   help="validation metric choosing the checkpoint: auto (one target: balanced_accuracy / r2 / "
                        "mean angular error by kind; several: loss), loss, or <target>/<metric> (default: %(default)s)")
    f.add_argument("--set", dest="config_overrides", metavar="KEY=VALUE", action="append", type=config_setting,
                   default=[], help="fine-tuning config setting, repeatable: hidden_dropout, attention_dropout "
                   "(a probability in [0, 1)), decoding_pool (current, current+past or attention), decoding_head_hidden_size "
                   "(integer >= 0; 0 = a linear head; null = hidden_size), window_stride (s > 0, the step of the "
                   "TRAINING windows, null = current_window; validation and test tile their split); VALUE is read as "
                   "JSON (0.3, null), else as text; e.g. --set window_stride=0.05")
    f.add_argument("--ci-block-s", type=float, metavar="S", help=CI_HELP)
    f.add_argument("--no-figures", action="store_true",
                   help="draw no figure: test_decoding.png is not written (finetune(..., write_figures=False)); the "
                        "metrics, test_predictions.csv and every other file as always")
    _add_overwrite(f, "replace a model already in --output-dir")
    f.set_defaults(func=cmd_finetune)

    dc = sub.add_parser("decode", help="decode behaviour with a fine-tuned decoder over a whole recording (or epoch, "
                                       "or one of its splits) and write a CSV of decoded and recorded values",
                       description="Runs a decoder written by 'neuroformer finetune' over windows tiling --data (or its --epoch, or "
                       "one of the decoder's splits) and writes one CSV row per window (start time in s, decoded and "
                       "recorded values, the split it lies in), prints the scores, and with --figure draws them over "
                       "time. Example: neuroformer decode --model runs/rec-hd --data rec.nwb --epoch sleep --output "
                       "sleep_hd.csv")
    dc.add_argument("--model", required=True, help="directory written by 'neuroformer finetune'")
    dc.add_argument("--data", help="the recording to decode: the one the decoder was fine-tuned on (e.g. another "
                                   "--epoch of it) or one with the same units (default: built-in simulated)")
    dc.add_argument("--epoch", help=EPOCH_WHAT + " (e.g. sleep, for a decoder fine-tuned on wake)")
    dc.add_argument("--split", choices=["train", "validation", "test"],
                    help="decode only the decoder's windows of this split (default: windows tiling the whole "
                         "recording or --epoch, each labelled with the decoder's split it lies in)")
    dc.add_argument("--output", required=True, help="CSV: one row per window")
    dc.add_argument("--figure", help="also draw the decoded (and recorded) values over time; its suffix picks the "
                                     "format: .png, .pdf, .svg or another matplotlib writes (.eps, .jpg, .tif, "
                                     ".webp, ...)")
    dc.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (default: %(default)s)")
    dc.add_argument("--ci-block-s", type=float, metavar="S",
                    help="the scores (of the decoded windows in the decoder's test split, or outside all its "
                         "splits: another epoch or recording) come with 95%% block-bootstrap intervals; S: length "
                         "(s, > 0) of the blocks of consecutive windows they resample in a time split (a trial "
                         "split's blocks are its trials); fewer than 5 blocks "
                         "give no interval, with a reason naming a shorter length that gives 5 (default: the length the "
                         "decoder was fine-tuned with, test/ci95_block_s of its metrics.json; else 10)")
    _add_overwrite(dc, "replace --output / --figure if they exist (refused without it)")
    dc.set_defaults(func=cmd_decode)

    m = sub.add_parser("embed", help="3D PCA of the neural embeddings of a split's windows, coloured by a variable",
                       description="Embeds the windows of one split of --data with a trained model (the pooled decoder states, or a "
                       "contrastive modality's neural projection), projects them on their first 3 principal "
                       "components and draws them coloured by a behaviour variable or trial column. Writes the "
                       "figure --output, the latents (.npy) and the window starts, colours and PCA coordinates (.json) "
                       "beside it. Example: neuroformer embed --model runs/rec --data rec.nwb --color-by "
                       "head_direction --output runs/rec/embed.png")
    m.add_argument("--model", required=True, help="directory written by 'neuroformer train' (or by 'neuroformer "
                                                   "finetune': the decoder's backbone is embedded)")
    m.add_argument("--data", help="the recording the model was trained on (default: built-in simulated)")
    m.add_argument("--epoch", help=EPOCH_HELP)
    m.add_argument("--color-by", required=True, help="behaviour variable (mean over each window; circular mean for "
                                                     "radians and degrees), NAME[k] for column k of a 2-D series (e.g. "
                                                     "'position[1]'), or trial:<column>")
    m.add_argument("--output", required=True, help="the figure, in any format matplotlib writes, by its extension "
                                                   "(.png, .pdf, .svg, ...); the latents go to the same name with "
                                                   ".npy, the window starts, colours and PCA coordinates with .json")
    m.add_argument("--split", default="test", choices=["train", "validation", "test"],
                   help="whose windows to embed, from the model's splits.json (default: test)")
    m.add_argument("--projected", help="a contrastive modality: embed after its neural projection (default: the "
                                       "pooled decoder states)")
    m.add_argument("--batch-size", type=int, default=128, help="windows per forward pass (default: 128)")
    m.add_argument("--color-scale", default="auto", choices=["auto", "categorical", "continuous"],
                   help="categorical: one colour and one colour-bar tick per value (at most 10 values, e.g. a "
                        "grating orientation); continuous: a colour bar (cyclic for an angle); auto (default): "
                        "categorical for a non-angle with at most 10 values, each repeated, else continuous")
    _add_overwrite(m)
    m.set_defaults(func=cmd_embed)

    a = sub.add_parser("ablate", help="train state-only, +past, +stimulus, +behaviour, +contrastive on one split "
                                      "and write a markdown table of test NLLs and F1",
                       description="Trains the variants of the --config model (state only, +past, then +stimulus, +behaviour, "
                       "+contrastive as its modalities allow) on the same windows and splits, per seed, and writes a "
                       "markdown table of their test NLLs and F1 to --output and the same numbers (each seed's too) to the "
                       "same name with .json. Example: neuroformer ablate --config configs/a2929_head_direction.yaml --data rec.nwb "
                       "--output ablation.md --seeds 0,1,2")
    a.add_argument("--config", required=True, help="YAML config of the full model (its modalities choose the variants)")
    a.add_argument("--data", help="recording (default: built-in simulated)")
    a.add_argument("--epoch", help=EPOCH_WHAT + "; every variant is trained and scored on it")
    a.add_argument("--output", required=True,
                   help="markdown file of the table (e.g. ablation.md); the same numbers, with each seed's, go to "
                        "the same name with .json (ablation.json); no plot is drawn")
    a.add_argument("--max-steps", type=int, help="steps per variant (default: the config's training.max_steps)")
    a.add_argument("--seed", type=int, help="training seed of every variant (default: the config's)")
    a.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2: every variant is trained once per seed and the "
                                   "table gives mean ± sd and the paired difference to +past (default: none, one run per variant "
                                   "at --seed, or the config's training.seed)")
    a.add_argument("--contrastive-loss-weight", type=float,
                   help="weight of +contrastive when the config's contrastive_loss_weight is 0 (refused when the "
                        f"config sets another weight or has no modality; default: {ABLATE_CONTRASTIVE_WEIGHT})")
    a.add_argument("--work-dir", help="keep the variants' models here (default: a temporary folder, removed)")
    _add_overwrite(a)
    a.set_defaults(func=cmd_ablate)

    h = sub.add_parser("push", help="upload a trained model (and optionally its windows dataset) to the Hub",
                       description="Uploads through huggingface_hub to HF_ENDPOINT (default huggingface.co) with "
                                   "the saved login or HF_TOKEN. The model directory is not modified. Example: "
                                   "neuroformer push --model runs/rec --repo-id my-lab/neuroformer-rec")
    h.add_argument("--model", required=True, help="directory written by 'neuroformer train', or a decoder "
                                                   "written by 'neuroformer finetune'")
    h.add_argument("--repo-id", required=True, help="model repository, NAMESPACE/NAME (created if missing)")
    h.add_argument("--private", action="store_true", help="create the repositories as private (an existing public repository is refused, not made private)")
    h.add_argument("--revision", help="branch to commit to (created if missing; default main)")
    h.add_argument("--license", default="other",
                   help="Hub licence id for the cards, lowercase (e.g. cc-by-4.0, mit); use the recording's licence; the Hub "
                        "checks it before anything is uploaded (default: %(default)s)")
    h.add_argument("--provenance", help="where the recording comes from (lab, paper, licence), for the model card")
    h.add_argument("--commit-message", help="the Hub commit's message (default: \"Upload Neuroformer model (hf_neuroformer)\")")
    h.add_argument("--data", help="the recording the model was trained on, to push its windows as a dataset "
                                  "(a pretrained model's; a decoder's windows are refused)")
    h.add_argument("--epoch", help=EPOCH_HELP)
    h.add_argument("--dataset-repo-id", help="dataset repository for the windows, NAMESPACE/NAME (not with --subfolder: the windows go to its root)")
    h.add_argument("--num-shards", type=int, default=1, help="Parquet shards per split (default: %(default)s)")
    h.add_argument("--replace-other", action="store_true",
                   help="push even into a repository holding another model (another config.json model_type, or "
                        "weights without a config.json) or a dataset that is not a Neuroformer windows dataset; "
                        "refused without it, since the push replaces it")
    h.add_argument("--allow-stale-metrics", action="store_true",
                   help="push even when --model's weights are not the ones its metrics.json scored (changed since "
                        "the run: weights_tensors_sha256 differs); the card then says its results are of earlier weights. "
                        "Refused without it")
    h.add_argument("--subfolder", default="",
                   help="push the model into this folder of the repository (NAME or NAME/NAME; letters, digits, '_', "
                        "'-'), to load with from_pretrained(REPO, subfolder=NAME, trust_remote_code=True); its card is "
                        "NAME/README.md, and the checks and the clean-up of an earlier push's files stay in that folder; "
                        "the root README.md is left as it is, or written (naming the folder) where there is none "
                        "(default: the repository's root)")
    h.set_defaults(func=cmd_push)
    s = sub.add_parser("simulate", help="simulate a network with known wiring and write spikes + ground truth to NWB",
                       description="Simulates a spiking network with known directed wiring and writes its spikes and "
                                   "ground truth (weights target x source, edge kinds, hub units, parameters; NWB "
                                   "scratch data) to one .nwb file, for 'neuroformer train' and then 'neuroformer "
                                   "connectivity'. --kind hub runs a brian2 leaky integrate-and-fire network (minutes "
                                   "for 300 units); hub-glm the same layout as a fast point-process GLM. Example: "
                                   "neuroformer simulate --kind hub-glm --units 50 --duration 60 --output hub.nwb")
    s.add_argument("--kind", default="hub", choices=["hub", "hub-glm", "glm"],
                   help="hub: brian2 LIF hub network (reference); hub-glm: the same layout as a fast point-process "
                        "GLM; glm: the built-in coupled GLM with assemblies (default: %(default)s)")
    s.add_argument("--output", required=True, help="output .nwb file")
    s.add_argument("--units", type=int, default=300, help="number of units, at least 2; connectivity needs at least 4 "
                   "(default: %(default)s)")
    s.add_argument("--hubs", type=int, help="number of hub units, hub kinds only (default: 3)")
    s.add_argument("--targets-per-hub", type=int, help="size of each hub's target block, hub kinds only (default: 30)")
    s.add_argument("--duration", type=float, default=600.0, help="simulated time, s, at most 3600 "
                   "(simulation.MAX_CLI_DURATION; default: %(default)s); the glm and hub-glm kinds round it to "
                   "whole bins, the hub kind up to whole dt steps, and record the simulated span as "
                   "the duration. A run whose memory estimate (the units x units wiring; the glm kind's drives, "
                   "the hub kinds' spikes at rates estimated with 2x headroom) exceeds half of this machine's "
                   "memory is refused before it starts, with the estimate and what fits")
    s.add_argument("--seed", type=int, default=0, help="seed of the wiring and the spikes (default: 0)")
    s.add_argument("--codegen", choices=["numpy", "cython"],
                   help="brian2 code generation target, --kind hub only (default: numpy)")
    _add_overwrite(s)
    s.set_defaults(func=cmd_simulate)
    v = sub.add_parser("render-gratings", help="render drifting-grating frames from each trial's orientation "
                       "(assumed nominal spatial/temporal frequency) and write spikes + frames to NWB",
                       description="Renders drifting-grating frames (--frame-rate Hz, --height x --width px over a field of view in "
                       "degrees) from the orientation (degrees) of each trial of --data, with an assumed spatial "
                       "(cycles/degree) and temporal (Hz) frequency that the data do not store, and writes the spikes "
                       "and the frames to one .nwb file, for a video-conditioned 'neuroformer train'. Example: "
                       "neuroformer render-gratings --data ../shared/data/allen_vcn_gratings --output gratings.nwb")
    v.add_argument("--data", required=True, help="a recording with trials and an orientation column "
                   "(e.g. ../shared/data/allen_vcn_gratings)")
    v.add_argument("--output", required=True, help="output .nwb file")
    v.add_argument("--column", default="orientation_deg", help="trial column with the orientation, degrees; NaN marks a "
                   "blank trial, rendered mean grey (default: %(default)s)")
    v.add_argument("--frame-rate", type=float, default=60.0, help="Hz (default: %(default)s, the Allen monitor)")
    v.add_argument("--height", type=int, default=32, help="frame height, px (default: %(default)s)")
    v.add_argument("--width", type=int, default=32, help="frame width, px (default: %(default)s)")
    v.add_argument("--fov-height", type=float, default=64.0, help="degrees of visual angle (default: %(default)s)")
    v.add_argument("--fov-width", type=float, default=64.0, help="degrees of visual angle (default: %(default)s)")
    v.add_argument("--spatial-frequency", type=float, default=0.04,
                   help="ASSUMED cycles/degree (not stored in the data; default: %(default)s, Allen's)")
    v.add_argument("--temporal-frequency", type=float, default=2.0,
                   help="ASSUMED drift Hz (not stored in the data; default: %(default)s, one of Allen's)")
    v.add_argument("--contrast", type=float, default=0.8,
                   help="Michelson contrast of the gratings, in [0, 1]; 0 is the mean grey shown between trials "
                        "(default: %(default)s)")
    _add_overwrite(v)
    v.set_defaults(func=cmd_render_gratings)

    c = sub.add_parser("connectivity", help="directed connectivity from attention vs correlation, CCG and GLM, "
                                            "scored against a simulation's ground truth",
                       # the command's --help showed only the flags: not what it writes, nor how to read the matrices
                       description="Aggregates a trained model's attention over the windows of a split into unit x "
                                   "unit matrices and scores them, beside Pearson correlation, cross-correlogram "
                                   "asymmetry and Poisson GLM coupling on the same spikes, against the ground truth of "
                                   "a file written by 'neuroformer simulate' (at least 4 units): AUROC / AUPRC of hub "
                                   "and excitatory edges against unconnected pairs, and direction accuracy. Writes "
                                   "into --output one .npy per matrix (target x source: M[i, j] = influence of unit j "
                                   "on unit i; row and column k are the unit named unit_names[k] in scores.json), scores.json and "
                                   "connectivity.png. Example: neuroformer connectivity "
                                   "--model runs/hub-model --data hub.nwb --output runs/hub-connectivity")
    c.add_argument("--model", required=True, help="directory written by 'neuroformer train'")
    c.add_argument("--data", required=True, help=".nwb written by 'neuroformer simulate' (ground truth in scratch)")
    c.add_argument("--output", required=True, help="new directory for matrices (.npy), scores.json, connectivity.png")
    c.add_argument("--split", default="all", choices=["train", "validation", "test", "all"],
                   help="windows whose attention is aggregated; baselines use the same time span, the GLM at most its "
                        "first 200,000 bins (said when it is cut; default: %(default)s)")
    c.add_argument("--max-windows", type=int, help="cap on windows aggregated (default: all)")
    c.add_argument("--bin-size", type=float, default=0.002,
                   help="bin width of the CCG and GLM baselines, s; their history is 5 such bins (default: "
                        "%(default)s)")
    c.add_argument("--corr-bin-size", type=float, default=0.01,
                   help="bin width of the (zero-lag) correlation baseline, s (default: %(default)s)")
    c.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (default: 64)")
    c.add_argument("--device", default="cpu", help="torch device for the attention pass (default: %(default)s)")
    _add_overwrite(c)
    c.set_defaults(func=cmd_connectivity)

    m = sub.add_parser("attention-map", help="attention of spike tokens over a video modality's frames, in pixels, "
                                             "overlaid on the frames (raw last stage layer and rollout)",
                       description="Reads the attention of a video-conditioned model's spike tokens over the frames of its video "
                       "modality for the windows of a split of --data (their mean, or one --window-index), maps it "
                       "onto the frame pixels (raw last layer and rollout) and draws it over the frames. Writes the "
                       "figure --output, the arrays (.npy) and a .json beside it. Example: neuroformer attention-map "
                       "--model runs/video --data gratings.nwb --output runs/video/attention.png")
    m.add_argument("--model", required=True, help="directory written by 'neuroformer train' (a video-conditioned model)")
    m.add_argument("--data", required=True, help="the recording with frames the model was trained on")
    m.add_argument("--output", required=True, help="figure .png; the arrays (.npy) and a .json go beside it")
    m.add_argument("--units", type=_unit_list, help="comma-separated unit indices of the recording, each once "
                                                    "(default: the whole population)")
    m.add_argument("--window-index", type=int, help="one window (index into the split's windows in time order; "
                                                    "default: the mean over the windows)")
    m.add_argument("--split", default="test", choices=["train", "validation", "test", "all"],
                   help="windows used (non-overlapping; default: %(default)s)")
    m.add_argument("--max-windows", type=int, help="the first N windows of the split (default: all)")
    m.add_argument("--modality", help="the video modality's name (default: the model's only one)")
    m.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (default: 64)")
    m.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    _add_overwrite(m)
    m.set_defaults(func=cmd_attention_map)
    return p


#: library field names whose flag has another name (``HubNetworkParams.n_hubs`` is ``--hubs``)
_FIELD_FLAGS = {"n_hubs": "--hubs", "frame_shape": "--height/--width", "field_of_view": "--fov-height/--fov-width",
                "model_dir": "--model"}


def _name_the_flag(message: str, parser: argparse.ArgumentParser, args, given_only: bool = False) -> str:
    """A library error that opens with the Python name of a value a flag gave (``batch_size: expected
    ...``, ``training.max_steps: ...``, ``n_hubs: ...``, ``GratingParams.frame_rate: ...``) opened
    with the flag instead (``--batch-size: expected ...``), as the rules for errors ask; a flag followed by
    its Python argument (``--overwrite (overwrite=True)``, ``--output-dir (output_dir)``) by the flag
    alone (the Python API's messages keep both); one that opens
    with both (``data_path (--data): ...``, ``model_dir (CLI: --model): ...``) with the flag alone, where
    it is an option of ``parser``.

    Only names that are an option of ``parser`` (the command's subparser) or in :data:`_FIELD_FLAGS`
    are replaced, and only when the message does not name the flag already in its opening (before its
    first ``": "``; ``resume: no checkpoint ... without --resume`` opens with ``--resume``); a ``training.`` field
    only when its flag was given (else the value came from the --config file, which the message
    names as it is). With ``given_only`` (the package's warnings), a name is replaced only where its
    option holds a value (not None): a reader's ``units: ...`` of a file's units table stays so under
    ``attention-map``, whose ``--units`` was not given."""
    import re

    # the library names a flag with its Python argument ('pass --overwrite (overwrite=True)', '--resume
    # (resume=False)', '--output-dir (output_dir)'): the command line user sees the flag alone
    message = re.sub(r"(--([a-z][a-z0-9-]*)) \(([a-z][a-z0-9_]*)(?:=[^()]*)?\)",
                     lambda m: m.group(1) if m.group(3) == m.group(2).replace("-", "_") else m.group(0), message)
    flags = {a.dest: a.option_strings[-1] for a in parser._actions if a.option_strings and a.dest != "help"}
    # 'data_path (--data): ...', 'model_dir (CLI: --model): ...': the library names both; the command line
    # user sees the flag alone (connectivity said 'data_path (--data): ... holds no ground-truth weights')
    both = re.match(r"[a-z][a-z0-9_]* \((?:CLI: )?(--[a-z0-9-]+)\)(?=: )", message)
    if both is not None and both.group(1) in flags.values():
        return both.group(1) + message[both.end():]
    m = re.match(r"(training\.|[A-Z][A-Za-z]+\.)?([a-z][a-z0-9_]*)(?=: | \(| ')", message)
    if m is None:
        return message
    prefix, name = m.groups()
    flag = _FIELD_FLAGS.get(name) or flags.get(name)
    # a message naming the flag in its opening ('training.max_steps (--max-steps): ...') keeps it; one naming it
    # later only ('resume: no checkpoint in ...; a run ... is started again without --resume') still opens
    # with the flag: 'resume: ...' was printed under train --resume as a field no option is called
    head = message.split(": ", 1)[0]
    if flag is None or flag.split("/")[0] in head:
        return message
    if prefix == "training." and getattr(args, name, None) is None:
        return message
    if given_only and all(getattr(args, dest, None) is None for dest, f in flags.items() if f == flag.split("/")[0]):
        return message
    return flag + message[m.end():]


#: the options that name a file or folder: an empty value ("--output-dir \"$RUN\"" with RUN unset) is
#: Path("") == "." , the current directory
_PATH_DESTS = ("data", "model", "output", "output_dir", "config", "figure", "real", "generated", "work_dir")


def _check_no_empty_paths(parser: argparse.ArgumentParser, args) -> None:
    """Refuse a file or folder option given as the empty string (``--output-dir ""``, as an unset shell
    variable gives it): ``Path("")`` is the current directory, so ``train`` wrote its model files into
    it, ``--model ""`` / ``--data ""`` read it, and ``--config ""`` was dropped for the defaults, all
    without a word.

    Raises:
        ValueError: ``--FLAG: empty path ...``, naming the first such option.
    """
    for action in parser._actions:
        if action.dest in _PATH_DESTS and action.option_strings and getattr(args, action.dest, None) == "":
            flag = action.option_strings[-1]
            raise ValueError(f"{flag}: empty path (an unset shell variable?); expected a file or folder name "
                             "('.' for the current directory)")


def _is_refusal(err: Exception) -> bool:
    """Whether :func:`main` reports ``err`` as one line (the library's refusals) rather than a
    traceback. A :class:`~hf_neuroformer.hub.HubPushError` can only come once the hub module is
    imported, so an error of the arguments alone (an empty path) does not import it (nor torch)."""
    hub = sys.modules.get(f"{__package__}.hub")
    return (isinstance(err, (FileExistsError, FileNotFoundError, PermissionError, ValueError, KeyError))
            or (hub is not None and isinstance(err, hub.HubPushError)))


class Terminated(KeyboardInterrupt):
    """Raised in the main thread of the ``neuroformer`` command by SIGTERM (``kill``, ``timeout``,
    a scheduler such as SLURM before its SIGKILL, a launcher stopping its workers): a
    :class:`KeyboardInterrupt`, so the clean-up a Ctrl-C runs (the record of an unfinished ``train``
    run and the note of the checkpoint to ``--resume`` from, a ``finetune`` folder removed, ...) runs
    the same. :func:`main` prints ``terminated (SIGTERM)`` and returns 143 (128 + 15)."""

    def __init__(self):
        super().__init__("terminated (SIGTERM)")


def _raise_terminated(signum, frame):
    # a second SIGTERM during the clean-up gets the handler there was before (by default: the process
    # ends at once), so a clean-up that cannot finish never makes `kill` or a launcher wait on it
    signal.signal(signal.SIGTERM, _raise_terminated.previous)
    raise Terminated()


_raise_terminated.previous = signal.SIG_DFL


def _catch_sigterm():
    """Install :func:`_raise_terminated` for SIGTERM; returns the handler to restore, or None when
    nothing was installed: off the main thread (an in-process caller's thread; Python runs handlers
    in the main thread only) or where SIGTERM is ignored (the starter chose so; kept)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:
        return None
    previous = signal.SIG_DFL if previous is None else previous  # None: set outside Python; default then
    _raise_terminated.previous = previous
    signal.signal(signal.SIGTERM, _raise_terminated)
    return previous


def main(argv=None) -> int:
    """``neuroformer [ARGS]``: the command's exit status. Output into a pipe its reader closed
    (``neuroformer inspect --data rec.nwb | head -3``) ends quietly with status 141, as a Unix
    tool killed by SIGPIPE does, not with a BrokenPipeError traceback.

    Ctrl-C (SIGINT) prints ``neuroformer CMD: interrupted`` and returns 130; SIGTERM (``kill``,
    ``timeout``, SLURM before its SIGKILL) takes the same path, with its clean-up (a ``train`` run
    says whether and from which checkpoint ``--resume`` continues it), prints ``neuroformer CMD:
    terminated (SIGTERM)`` and returns 143 (128 + 15). The SIGTERM handler (:class:`Terminated`
    raised in the main thread) is installed for the call only and the previous one restored after
    it; importing the package or calling the library from Python installs none. A second SIGTERM
    during the clean-up gets the previous handler (by default it ends the process at once).

    Under ``torchrun`` / ``accelerate launch``, the launcher sends SIGTERM to the other workers
    when one fails, then SIGKILL after its grace period (torch elastic: 30 s): each worker runs its
    clean-up and exits with 143. A worker blocked inside a collective runs Python's handler only once
    the call returns; if it does not return, the launcher's SIGKILL ends it as before, so the handler
    never makes the launch hang."""
    previous = _catch_sigterm()
    try:
        try:
            return _main(argv)
        finally:  # output that fit the buffer meets the closed pipe here, not at exit ("Exception ignored")
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if sys.stdout is not None:  # None when the process started with its stdout closed (cmd >&-)
                sys.stdout.flush()
    except BrokenPipeError:
        try:  # the interpreter flushes stdout again at exit: it now writes to devnull
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):  # a stdout with no file descriptor (in-process callers)
            pass
        return 141


def _main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # --help, --version and usage errors end here, before any import of the library
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    # warnings read like the errors: "neuroformer train: warning: <message>", without Python's
    # "path/file.py:240: UserWarning:" and the source line (restored afterwards, for in-process callers)
    plain = warnings.formatwarning

    def _ours(category, filename) -> bool:
        # a warning of ours is attributed to a file of the package, or (its stacklevel led out of it, e.g.
        # through torch.no_grad's wrapper: connectivity's TruncatedWindowsWarning was printed as
        # ".../torch/utils/_contextlib.py:124: TruncatedWindowsWarning: ..." with torch's source line)
        # is of a category the package defines
        return issubclass(category, UserWarning) and (
            "hf_neuroformer" in filename or category.__module__.split(".")[0] == "hf_neuroformer")

    def _format(message, category, filename, lineno, line=None):
        if _ours(category, filename):  # others keep their origin
            # named by the flag, as the errors are ("--model: the split plan of ...", not "model_dir: ...")
            return f"neuroformer {args.command}: warning: {_name_the_flag(str(message), sub, args, given_only=True)}\n"
        return plain(message, category, filename, lineno, line)

    warnings.formatwarning = _format
    shown = warnings.showwarning

    def _show(message, category, filename, lineno, file=None, line=None):
        # under torchrun every rank runs the command and reached the same warnings of the package
        # (no validation windows, ...): each came once per rank; rank 0 shows them, once
        if is_main_rank() or not _ours(category, filename):
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = _show
    try:
        _check_no_empty_paths(sub, args)
        return args.func(args)
    except Exception as err:
        if not _is_refusal(err):
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        if _says_refusal():  # under torchrun: once (per machine), not once per process
            rank = "" if is_main_rank() else f"rank {os.environ['RANK']}: "
            print(f"neuroformer {args.command}: error: {rank}{_name_the_flag(str(msg), sub, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C: one line and the shell's status for SIGINT, not a traceback
        # and what was undone (push: the empty repository it had created was deleted again)
        notes = "".join(f"; {n}" for n in getattr(err, "__notes__", ()))
        term = isinstance(err, Terminated)  # SIGTERM: the same clean-up, its own word and status
        print(f"\nneuroformer {args.command}: {'terminated (SIGTERM)' if term else 'interrupted'}{notes}",
              file=sys.stderr)
        return 143 if term else 130
    finally:
        warnings.formatwarning = plain
        warnings.showwarning = shown


# the console script and the helpers the docs name; the cmd_* handlers are reached through main
__all__ = ["Terminated", "config_setting", "main", "sample_output_paths"]


if __name__ == "__main__":
    sys.exit(main())
