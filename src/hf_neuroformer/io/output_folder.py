"""Output folders that a command replaces as a whole (``neuroformer prepare``,
``neuroformer connectivity``): what ``--overwrite`` may delete, and the swap into place.

A folder is written in full beside its final place (``tempfile.mkdtemp``), then renamed into it.
With ``--overwrite`` the old folder is deleted, so it must be recognisably an earlier output of
the same command: a marker file of that command (``manifest.json`` of prepared windows,
``scores.json`` of connectivity), no file the command does not write, and nothing of a model.
The working directory and the folders above it are always refused (``--output .`` with
``--overwrite`` once deleted the whole working directory). ``neuroformer train`` does not use
this: it replaces the model files of its ``--output-dir`` under a journal
(:func:`hf_neuroformer.training.save_atomically`, :mod:`hf_neuroformer.save_journal`).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from ..recording import count_noun, first_few

__all__ = ["OutputFolderSpec", "MODEL_MARKERS", "check_file_name", "check_output_folder", "check_writable_parent",
           "missing_folders", "move_into_place", "remove_empty_folders", "warn_leftovers"]

#: Files whose presence means a folder holds a trained model (``neuroformer train`` writes them).
MODEL_MARKERS = ("model.safetensors", "pytorch_model.bin", "metrics.json", "training_config.json",
                 "training_log.json")


@dataclass(frozen=True)
class OutputFolderSpec:
    """What one command writes into its output folder.

    Attributes:
        command: the ``neuroformer`` sub-command, for messages (e.g. ``"prepare"``).
        marker: the file (relative path) every output of the command holds, e.g. ``"manifest.json"``.
        is_own: ``is_own(folder) -> bool``: the marker's content is the command's (e.g. the
            manifest's ``format``); it is called only when the marker file exists.
        patterns: ``fnmatch`` patterns of every relative path (POSIX, files and folders) the command
            writes, matched at the same depth (``*`` does not cross a ``/``); anything else in the
            folder is refused rather than deleted.
        unlisted: optional ``unlisted(folder) -> list`` of relative paths that match ``patterns``
            but that the output's own record does not account for (a shard its manifest does not
            list): refused too. Called only on an output ``is_own`` took for the command's.
    """

    command: str
    marker: str
    is_own: Callable[[Path], bool]
    patterns: Tuple[str, ...]
    unlisted: Optional[Callable[[Path], List[str]]] = None


def check_file_name(path, flag: str) -> None:
    """Refuse an output file name given with a trailing slash (``--output runs/x.png/``), which
    names a folder: ``Path()`` drops the slash, so a command that took the text as a ``Path``
    first wrote the file ``runs/x.png`` without a word. Call it on the text as given.

    Raises:
        ValueError: naming ``flag`` and the path.
    """
    if isinstance(path, str) and path.endswith(("/", os.sep)):
        raise ValueError(f"{flag}: {path!r} names a directory (trailing slash); expected a file name")


def check_writable_parent(path, flag: str) -> None:
    """Refuse an output ``path`` (file or folder) that cannot be created, before any work: the
    nearest existing folder at or above it must be a folder this process may write in.

    Outputs are written last, so a path under a file (``--output-dir run.yaml/m``) or in a folder
    without write permission failed after the whole run, with a traceback
    (``NotADirectoryError``, ``PermissionError``) or a bare ``[Errno 17] File exists``.

    Raises:
        FileExistsError: a path above ``path`` is a file, not a folder (named, with ``flag``).
        PermissionError: the nearest existing folder is not writable (named, with ``flag``).
    """
    out = Path(path).absolute()
    where = out if out.is_dir() else out.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise FileExistsError(f"{flag}: {str(where)!r} is a file, not a folder, so {str(path)!r} cannot be created "
                              "in it; name a path in a folder")
    if not os.access(where, os.W_OK | os.X_OK):
        raise PermissionError(f"{flag}: no permission to write in {str(where)!r}, so {str(path)!r} cannot be "
                              "written; name a path in a folder you can write to")


def missing_folders(path) -> list:
    """``path`` and the folders above it that do not exist yet, deepest first (``[a/b/c, a/b, a]``
    when only the folder holding ``a`` exists): what a run writing into ``path`` creates, and so
    what :func:`remove_empty_folders` may remove again when the run stops before it has written
    anything there."""
    out, p = [], Path(path).absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def remove_empty_folders(folders) -> None:
    """Remove each of ``folders`` (:func:`missing_folders`, deepest first) that is an empty folder,
    stopping at the first that is not: a failed run into a new ``a/b/c`` left ``a/b`` behind when
    only ``c`` was removed. A folder that holds anything (another process's file) is kept, and so
    is every folder above it."""
    for p in folders:
        try:
            if not p.is_dir() or p.is_symlink() or any(p.iterdir()):
                return
            p.rmdir()
        except OSError:  # removed or filled meanwhile, or not ours to remove: kept
            return


def _first(items, n: int = 3) -> str:
    return first_few(sorted(items), n)


def check_output_folder(path, spec: OutputFolderSpec, *, overwrite: bool, flag: str = "--output",
                        overwrite_flag: str = "--overwrite") -> Path:
    """Refuse an output folder that this command must not write or replace; call it before any
    work, and again just before :func:`move_into_place`.

    Accepted: a path that does not exist, an empty folder, and (only with ``overwrite``) an
    earlier output of the same command (see :class:`OutputFolderSpec`).

    Args:
        flag: the option or argument that named the folder, at the start of each message
            (``"--output"`` on the command line, ``"output_dir"`` from Python).
        overwrite_flag: how the messages name the permission to replace (``"--overwrite"``, or
            ``"overwrite=True"`` from Python).

    Returns:
        ``Path(path)``.

    Raises:
        FileExistsError: one line naming ``flag`` and what to do: the path is the working
            directory or a folder above it, is a symbolic link, is not a folder, is not empty
            (without ``overwrite``), holds a model, is not an output of ``spec.command``, or holds
            files ``spec.command`` does not write.
    """
    out = Path(path)
    cwd = Path.cwd().resolve()
    where = out.resolve()
    if where == cwd or where in cwd.parents:
        raise FileExistsError(f"{flag}: {str(path)!r} is the working directory or a folder above it; name a new "
                              "folder for the output (e.g. a subfolder)")
    if out.is_symlink():
        raise FileExistsError(f"{flag}: {str(path)!r} is a symbolic link; name a new folder (or the folder itself)")
    check_writable_parent(out, flag)
    if not out.exists():
        return out
    if not out.is_dir():
        raise FileExistsError(f"{flag}: {str(path)!r} exists and is not a folder; name a new folder")
    if not any(out.iterdir()):
        return out
    if not overwrite:
        raise FileExistsError(f"{flag}: {str(path)!r} exists and is not empty; choose another folder, or pass "
                              f"{overwrite_flag} to replace an earlier output of 'neuroformer {spec.command}'")
    model = [f for f in MODEL_MARKERS if (out / f).exists()] + [p.name for p in out.glob("checkpoint-*")]
    if model:
        raise FileExistsError(f"{flag}: {str(path)!r} holds a model ({_first(model)}); {overwrite_flag} replaces only an "
                              f"earlier output of 'neuroformer {spec.command}', so choose another folder")
    if not (out / spec.marker).is_file() or not spec.is_own(out):
        raise FileExistsError(f"{flag}: {str(path)!r} is not an earlier output of 'neuroformer {spec.command}' (no "
                              f"{spec.marker} of it), and {overwrite_flag} replaces only that; choose another folder")
    foreign = [e for e in (p.relative_to(out).as_posix() for p in out.rglob("*"))
               if not any(fnmatch.fnmatchcase(e, q) and e.count("/") == q.count("/") for q in spec.patterns)]
    if spec.unlisted is not None:  # e.g. a Parquet file put into a prepared folder's data/: it matched data/*.parquet
        foreign += spec.unlisted(out)
    if foreign:
        raise FileExistsError(f"{flag}: {str(path)!r} holds files 'neuroformer {spec.command}' does not write "
                              f"({_first(foreign)}), which {overwrite_flag} would delete; move them out or choose "
                              "another folder")
    return out


def move_into_place(tmp, final) -> None:
    """Rename the finished folder ``tmp`` to ``final`` (both in one parent folder). An existing
    ``final`` is first renamed aside and deleted only once ``tmp`` is in place; if that rename
    fails, the old folder is put back, so a failure never leaves neither."""
    tmp, final = Path(tmp), Path(final)
    if not final.exists():
        os.replace(tmp, final)
        return
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:12]}")
    os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        os.rename(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def warn_leftovers(final, command: str) -> None:
    """Warn about the hidden folders an earlier run of ``command`` into ``final`` left beside it:
    ``.<name>.tmp-*`` (a run killed while writing, e.g. by the out-of-memory killer: Ctrl-C and
    errors remove theirs) and ``.<name>.old-*`` (killed while swapping the new folder in). They
    are invisible to ``ls`` and can hold as much as the output (the shards of a whole recording);
    they are named, not deleted, since one may belong to a run into ``final`` still writing.

    Warns:
        UserWarning: naming each folder and the MiB it holds.
    """
    final = Path(final)
    found = sorted(p for pat in (f".{final.name}.tmp-*", f".{final.name}.old-*") for p in final.parent.glob(pat)
                   if p.is_dir() and not p.is_symlink())
    if not found:
        return
    sizes = [sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 2 ** 20 for p in found]
    import warnings

    warnings.warn(
        f"{str(final.parent)!r} holds {count_noun(len(found), 'folder')} left by an interrupted 'neuroformer {command}' into "
        f"{final.name!r} ({', '.join(f'{p.name}: {mib:.1f} MiB' for p, mib in zip(found, sizes))}); they are not "
        f"part of {str(final)!r}: delete them unless a run into it is still writing", UserWarning, stacklevel=3)
