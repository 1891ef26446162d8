"""The record of a run that has not saved its model yet, kept in its output folder.

``train`` and ``finetune`` leave a model already in their output folder whole and untouched until
the new model is saved over it in one transaction
(:func:`~hf_neuroformer.training.save_atomically`). While they train, the folder therefore holds
the earlier model (or none) beside the new run's checkpoints in ``checkpoints/``; a run killed
outright (SIGKILL, power cut) leaves both. The record written here when training starts says
which is which: the model files there belong to the model saved before the run, the checkpoints
it does not list as older are the run's. It is removed in the same transaction as the save of a
model (any run's: the folder then holds that model), and by a run stopped by an exception that
leaves no checkpoint of its own. :func:`unfinished_run_note` turns it into the sentence that the
package's loaders (:func:`~hf_neuroformer.generation.load_pretrained`,
:func:`~hf_neuroformer.finetuning.load_decoder`) warn with.
"""

from __future__ import annotations

import json
import os
import re
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from .jsonio import write_atomic
from .recording import count_noun, first_few

__all__ = ["UNFINISHED_TRAIN", "UNFINISHED_FINETUNE", "UNFINISHED_RECORDS", "write_unfinished_run", "checked_model_dir_noting_unfinished_run",
           "read_unfinished_run", "unfinished_run_checkpoints", "unfinished_run_note"]

#: The record of a ``train`` run (:func:`~hf_neuroformer.training.train`) that has not saved its model;
#: its checkpoints are ``checkpoints/step-*``.
UNFINISHED_TRAIN = "train_unfinished.json"
#: The record of a fine-tuning (:func:`~hf_neuroformer.finetuning.finetune`) that has not saved its
#: decoder; its checkpoints are Trainer's ``checkpoints/checkpoint-*``.
UNFINISHED_FINETUNE = "finetune_unfinished.json"
#: The record file of each run kind (``"train"``, ``"finetune"``).
UNFINISHED_RECORDS: Dict[str, str] = {"train": UNFINISHED_TRAIN, "finetune": UNFINISHED_FINETUNE}

# per run kind: who ran, what it saves, the names of its checkpoints, and the way out
_RUNS = {
    "train": ("a training run", "model", "step-*",
              "Resume it (--resume, resume=True), train into the folder again with --overwrite to replace them, or "
              f"delete {UNFINISHED_TRAIN} (and that run's checkpoints) once that run is known to have ended"),
    "finetune": ("a fine-tuning", "decoder", "checkpoint-*",
                 f"Fine-tune into it again to replace them, or delete {UNFINISHED_FINETUNE} (and that run's "
                 "checkpoints) once that run is known to have ended"),
}
_CHECKPOINT_DIR = "checkpoints"  # training.CHECKPOINT_DIR, finetuning's too


def _run_kind(run) -> str:
    if run not in _RUNS:
        raise ValueError(f"run: expected one of {sorted(_RUNS)}, got {run!r}")
    return run


def _step_key(name: str):
    found = re.search(r"(\d+)$", name)
    return (int(found.group(1)) if found else -1, name)


def _checkpoint_names(folder: Path, run: str) -> List[str]:
    ckpt = folder / _CHECKPOINT_DIR
    return sorted((p.name for p in ckpt.glob(_RUNS[run][2]) if p.is_dir()), key=_step_key) if ckpt.is_dir() else []


def write_unfinished_run(output_dir, run: str, checkpoints_before: Optional[Iterable[str]] = None, **details) -> Path:
    """Write the record of ``run`` (:data:`UNFINISHED_RECORDS`) into ``output_dir`` as its training
    starts, atomically (whole or absent; one already there is replaced), and return its path.

    The record is a JSON object: ``run`` (``"train"`` or ``"finetune"``), ``started_utc`` (ISO 8601,
    seconds), ``pid`` and ``host`` of the run, ``model_files_before`` (the model files already in
    ``output_dir``, :func:`~hf_neuroformer.training.model_files_in`: the earlier model, left whole
    until the new one is saved over it), ``checkpoints_before`` (checkpoint folder names in
    ``output_dir/checkpoints`` that are not this run's) and ``details`` (JSON values, e.g.
    ``finetune``'s ``model_dir``, a resumed ``train``'s ``resumed_from``).

    Args:
        output_dir: the run's output folder (existing).
        run: ``"train"`` or ``"finetune"``.
        checkpoints_before: the names to record as not this run's; default (None): the run's kind of
            checkpoint folders (``step-*`` / ``checkpoint-*``) already in ``output_dir/checkpoints``.

    Raises:
        ValueError: ``run`` is not one of those two.
    """
    from .training import model_files_in

    out = Path(output_dir)
    run = _run_kind(run)
    before = _checkpoint_names(out, run) if checkpoints_before is None else sorted(checkpoints_before, key=_step_key)
    record = {"run": run, "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "pid": os.getpid(), "host": socket.gethostname(), **details,
              "model_files_before": model_files_in(out), "checkpoints_before": before}
    return write_atomic(out / UNFINISHED_RECORDS[run], json.dumps(record, indent=2))


def read_unfinished_run(folder, run: str) -> Optional[dict]:
    """The record of ``run`` in ``folder`` (:func:`write_unfinished_run`) as a dict; ``{}`` for a
    record that cannot be read (not JSON, not an object), None when there is none.

    Raises:
        ValueError: ``run`` is not ``"train"`` or ``"finetune"``.
    """
    path = Path(folder) / UNFINISHED_RECORDS[_run_kind(run)]
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def unfinished_run_checkpoints(folder, run: str) -> List[str]:
    """The checkpoint folders in ``folder/checkpoints`` of the run that ``folder``'s record of
    ``run`` speaks of (its kind of checkpoint that the record does not list as older), in step
    order; all of them when the record is unreadable, none when there is no record.

    Raises:
        ValueError: ``run`` is not ``"train"`` or ``"finetune"``.
    """
    record = read_unfinished_run(folder, run)
    if record is None:
        return []
    earlier = record.get("checkpoints_before")
    earlier = set(earlier) if isinstance(earlier, list) else set()
    return [n for n in _checkpoint_names(Path(folder), run) if n not in earlier]


def unfinished_run_note(folder, flag: str = "model_dir") -> Optional[str]:
    """The sentence that says ``folder`` holds the record of a run that has not saved its model
    (:func:`write_unfinished_run`: still running, or stopped before its end): which run (``train``
    or ``finetune``), when it started (UTC), its pid and host, that the model files there are the
    ones saved before it (or that none was), which checkpoints are that run's, not the model's,
    and what to do. One sentence per record (both kinds may be there). None when there is none;
    a record that cannot be read (not JSON) is still reported, without those details.

    ``flag`` names the folder's option or argument at the start of the sentence."""
    notes = []
    for run, name in UNFINISHED_RECORDS.items():
        record = read_unfinished_run(folder, run)
        if record is None:
            continue
        who, saves, _, way_out = _RUNS[run]
        when = ", ".join(f"{label} {record[k]}" for k, label in (("started_utc", "started"), ("pid", "pid"),
                                                                 ("host", "on host")) if k in record)
        held = ("no model was saved there before it" if record.get("model_files_before") == [] else
                "the model files there are the ones saved before it, left whole")
        runs = unfinished_run_checkpoints(folder, run)
        ckpt = Path(folder) / _CHECKPOINT_DIR
        notes.append(
            f"{flag}: {who} into {str(folder)!r}{f' ({when})' if when else ''} has not saved its {saves} ({name} is "
            f"there: the run is still going, or it was stopped before its end): {held}"
            + (f"; {str(ckpt)!r} holds that run's {count_noun(len(runs), 'checkpoint')} ({first_few(runs)}), not "
               "that model's" if runs else "")
            + f". {way_out}")
    return " ".join(notes) if notes else None


def checked_model_dir_noting_unfinished_run(model_dir, flag: str, stacklevel: int = 3, **check) -> Path:
    """:func:`~hf_neuroformer.generation.check_model_dir` of ``model_dir`` (``check``: its keyword
    arguments), then the record of an unfinished run (:func:`unfinished_run_note`): warned of when the
    folder holds a model, added to the ``FileNotFoundError`` when it holds none yet. Asked after the
    check, which completes a save killed while moving its files (the save that removes the record of
    its run in the same transaction). Used by the package's loaders (``load_pretrained``,
    ``load_decoder``).

    Args:
        model_dir: the model folder (str or path-like).
        flag: the option or argument that named it, at the start of the messages.
        stacklevel: passed to :func:`warnings.warn`: 3 points at the caller of the loader that calls this.

    Returns:
        The checked folder.

    Raises:
        FileNotFoundError: from ``check_model_dir``, with the record's sentence added when there is one.
    """
    import warnings

    from .generation import check_model_dir

    try:
        d = check_model_dir(model_dir, flag, **check)
    except FileNotFoundError as e:
        unfinished = unfinished_run_note(model_dir, flag) if isinstance(model_dir, (str, os.PathLike)) else None
        if unfinished is None:
            raise
        raise FileNotFoundError(f"{e}; {unfinished}") from e
    unfinished = unfinished_run_note(d, flag)
    if unfinished is not None:
        warnings.warn(unfinished, UserWarning, stacklevel=stacklevel)
    return d
