"""Replace the files of a model folder as one step that a killed process cannot leave half done.

A model folder (``neuroformer train`` / ``finetune`` output) holds its files side by side
(``config.json``, ``model.safetensors``, tokenizer files, JSON files, figures) next to
``checkpoints/``, so the folder itself cannot be renamed into place; its files are moved one
by one. :func:`replace_files` makes that a transaction:

1. every new file is written (and flushed to disk) in a staging folder ``.tmp-save-*`` inside
   the model folder: until step 2 a crash leaves the old model untouched;
2. the journal ``.save-in-progress.json`` (the staging folder, the files it holds and the files
   to delete) is written beside them and renamed into place: this rename commits the save;
3. the files are moved out of the staging folder (``os.replace``), the files to delete are
   deleted, the staging folder and then the journal are removed.

A process killed during step 3 leaves the journal; :func:`finish_interrupted_save` completes the
moves (the files already moved are the new ones, the others are still staged), so the folder
holds the whole new model and never a mix of new and old files. It is called before a folder
is read by ``NeuroformerConfig`` / ``NeuroformerPreTrainedModel`` / ``NeuroformerTokenizer`` /
``NeuroformerProcessor`` ``.from_pretrained`` (and before their ``save_pretrained`` writes into it, so
a pending save is never completed over newer files), by the ``--model`` check of the commands
(``generation.check_model_dir``, which ``neuroformer push`` runs too) and before ``train`` / ``finetune`` check or write an output folder.
``AutoConfig.from_pretrained`` (which every ``AutoModel*`` calls first) reads ``config.json`` through
transformers' own base class; ``NeuroformerConfig.from_dict`` then completes the save and reads it again.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable

__all__ = ["SAVE_JOURNAL", "STAGING_PREFIX", "replace_files", "finish_interrupted_save", "finish_interrupted_save_of",
           "pending_save_folder", "fsync_path", "fsync_tree"]

#: The journal of a committed save whose files are still being moved into place.
SAVE_JOURNAL = ".save-in-progress.json"
#: The prefix of a staging folder (``tempfile.mkdtemp(prefix=...)`` inside the model folder).
STAGING_PREFIX = ".tmp-save-"


def fsync_path(path: Path, directory: bool = False) -> None:
    """Flush ``path`` (a file, or a directory's entries) to disk; a no-op where the OS refuses."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # e.g. directories on Windows, some network filesystems
        pass
    finally:
        os.close(fd)


def fsync_tree(folder) -> None:
    """Flush every file under ``folder`` (sub-folders included), then each folder's entries, bottom
    up, to disk: what a folder written and then renamed into place (a model save's staging folder, a
    training checkpoint) must do before the rename, so that a power cut after it does not leave the
    new name holding empty or partly written files."""
    for dirpath, _, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            fsync_path(Path(dirpath) / name)
        fsync_path(Path(dirpath), directory=True)


def replace_files(folder, staged, remove: Iterable[str] = ()) -> None:
    """Move every file of ``staged`` into ``folder`` and delete the files ``remove`` of ``folder``,
    all or nothing (see the module docstring).

    Args:
        folder: the model folder (existing).
        staged: a folder directly inside ``folder`` whose name starts with :data:`STAGING_PREFIX`,
            holding only plain files (the new model); it is removed at the end.
        remove: names of files in ``folder`` to delete with the move (e.g. a figure of an earlier
            run that the new one does not have); names ``staged`` holds are replaced, not deleted.

    A failure (or Ctrl-C) before the commit removes ``staged`` and the unfinished journal
    (``.save-in-progress.json.tmp``) and leaves the files of ``folder`` as they were.

    Raises:
        ValueError: if ``staged`` is not such a folder or holds a sub-folder.
    """
    folder, staged = Path(folder), Path(staged)
    if staged.parent.resolve() != folder.resolve() or not staged.name.startswith(STAGING_PREFIX):
        raise ValueError(f"staged: expected a folder {STAGING_PREFIX}* directly inside {str(folder)!r}, got {str(staged)!r}")
    names = sorted(p.name for p in staged.iterdir())
    if any(not (staged / n).is_file() for n in names):
        raise ValueError(f"staged: {str(staged)!r} holds something other than plain files: {names}")
    journal = {"staged": staged.name, "files": names, "remove": sorted(set(remove) - set(names))}
    tmp = folder / (SAVE_JOURNAL + ".tmp")
    try:
        fsync_tree(staged)
        with open(tmp, "w") as f:
            json.dump(journal, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / SAVE_JOURNAL)  # the commit point
    except BaseException:
        # not committed (Ctrl-C while the staged model was flushed to disk, a full disk for the journal): the
        # old files are whole; the staged copy of the model and the journal's .tmp stayed beside them until
        # the next save into the folder. Asked of the folder, not of a flag: an interruption just after the
        # rename has committed, and the staged files are then the new model
        if not (folder / SAVE_JOURNAL).exists():
            tmp.unlink(missing_ok=True)
            shutil.rmtree(staged, ignore_errors=True)
        raise
    fsync_path(folder, directory=True)
    finish_interrupted_save(folder)


def finish_interrupted_save(folder) -> bool:
    """Complete a save into ``folder`` that was killed after it committed (its journal is there).

    Returns:
        True when a save was completed, False when ``folder`` holds no journal (nothing to do).

    Raises:
        ValueError: if the journal is not one :func:`replace_files` writes (names outside the folder).
        OSError: naming the folder and the journal when the moves cannot be done (e.g. a
            read-only folder): its files are then a mix of the new model and the old one.
    """
    folder = Path(folder)
    path = folder / SAVE_JOURNAL
    try:
        journal = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return False
    staged, files, remove = journal.get("staged"), journal.get("files"), journal.get("remove")
    names = [staged, *(files or []), *(remove or [])]
    if (not isinstance(staged, str) or not staged.startswith(STAGING_PREFIX) or not isinstance(files, list)
            or not isinstance(remove, list)
            or any(not isinstance(n, str) or n in ("", ".", "..") or "/" in n or "\\" in n for n in names)):
        raise ValueError(f"{str(path)!r}: not a save journal of hf_neuroformer ({journal!r}); delete it if the "
                         "folder's files are known to be whole")
    try:
        for name in files:
            try:
                os.replace(folder / staged / name, folder / name)
            except FileNotFoundError:  # moved before the interruption
                pass
        for name in remove:
            (folder / name).unlink(missing_ok=True)
        fsync_path(folder, directory=True)
        shutil.rmtree(folder / staged, ignore_errors=True)
        path.unlink(missing_ok=True)
    except OSError as err:
        raise OSError(f"{str(folder)!r}: a save into this folder was interrupted ({SAVE_JOURNAL} is there) and cannot "
                      f"be completed ({type(err).__name__}: {err}); its files are a mix of two models until the "
                      "folder can be written and it is loaded again") from err
    (folder / (SAVE_JOURNAL + ".tmp")).unlink(missing_ok=True)
    return True


def finish_interrupted_save_of(name_or_path, subfolder="") -> bool:
    """:func:`finish_interrupted_save` for a ``from_pretrained`` argument that is a local folder
    (a Hub repo id or a missing path is left to ``from_pretrained``); True when a save was completed.

    Args:
        name_or_path: ``from_pretrained``'s ``pretrained_model_name_or_path``.
        subfolder: ``from_pretrained``'s ``subfolder`` (``""`` or None: none): the folder read is
            then ``name_or_path/subfolder``, where ``save_pretrained(name_or_path/subfolder)`` put
            its journal, and that folder's save is the one completed (``name_or_path`` itself is
            not read, so its own files are left alone). A ``subfolder`` that is no text, or that
            names no folder there, is left to ``from_pretrained``.
    """
    folder = pending_save_folder(name_or_path, subfolder)
    return finish_interrupted_save(folder) if folder is not None else False


def pending_save_folder(name_or_path, subfolder="") -> "Path | None":
    """The local folder ``name_or_path/subfolder`` (``name_or_path`` without a subfolder) that
    ``from_pretrained(name_or_path, subfolder=subfolder)`` reads, when it holds the journal of an
    interrupted save (:data:`SAVE_JOURNAL`); None otherwise (no such local folder, a Hub repo id,
    no journal)."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        return None
    folder = Path(name_or_path)
    if subfolder:
        if not isinstance(subfolder, (str, os.PathLike)):
            return None
        folder = folder / subfolder
    return folder if folder.is_dir() and (folder / SAVE_JOURNAL).is_file() else None
