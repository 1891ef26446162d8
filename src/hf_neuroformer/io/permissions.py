"""Permissions of files and folders written through a temporary (``tempfile.mkstemp`` /
``mkdtemp``, then ``os.replace``).

``mkstemp`` creates its file ``0600`` and ``mkdtemp`` its folder ``0700`` whatever the process
umask, and ``os.replace`` keeps those bits: a generated NWB file or a prepared-windows folder
came out private (``-rw-------`` / ``drwx------`` under umask 022), unreadable by other users and
nodes of a shared filesystem. :func:`as_created` gives the temporary the bits a plain ``open()``
or ``mkdir()`` would have given it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["MissingOutputFolderError", "OutputPathError", "as_created", "check_output_file", "check_output_folder",
           "current_umask", "write_through_temporary"]


class OutputPathError(ValueError):
    """An output file path that no file can be written to: it names an existing directory, or a
    file stands where one of its folders should be."""


class MissingOutputFolderError(FileNotFoundError):
    """An output file's folder does not exist and the writer was not asked to create it
    (``make_parent=False``): a typo in the folder name would otherwise create a new folder
    without a word."""


def check_output_file(path, overwrite: bool) -> Path:
    """Refuse an output file ``path`` before anything is written: a directory (always: ``overwrite``
    replaces a file, never a folder) and an existing file unless ``overwrite``. Returns ``Path(path)``.

    Raises:
        OutputPathError: ``path`` is an existing directory (a ``ValueError``, which the CLI reports in one
            line; ``os.replace`` of the finished temporary onto it raised ``IsADirectoryError`` naming the
            temporary, a traceback from the CLI).
        FileExistsError: ``path`` is an existing file, or a broken symbolic link (one whose target does not
            exist: ``Path.exists`` is False for it, and the write was refused only at its end, as a file
            "written while this file was being written"), and ``overwrite`` is False.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"path: {str(path)!r} is a directory; expected a file name (overwrite=True replaces "
                              "a file, never a directory)")
    if not overwrite:
        if path.exists():
            raise FileExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
        if path.is_symlink():
            raise FileExistsError(_broken_link_message(path))
    return path


def _broken_link_message(path: Path) -> str:
    """The refusal of a broken symbolic link at an output ``path`` (overwrite=False)."""
    try:
        target = repr(os.readlink(path))
    except OSError:  # removed or replaced since: name it without its target
        target = "a path that does not exist"
    return (f"{path} is a broken symbolic link (to {target}, which does not exist); it is left as it is; "
            "remove it, or pass overwrite=True (CLI: --overwrite) to replace the link with the file")


def check_output_folder(path, make_parent: bool = False) -> Path:
    """Refuse an output file ``path`` whose folder cannot hold it, before anything is written:
    a missing folder unless ``make_parent`` (as :func:`~hf_neuroformer.jsonio.write_atomic` and
    :func:`~hf_neuroformer.simulation.write_network` refuse it), and always a path under a file
    (``run.nwb/x.nwb``: ``mkdir`` failed with a bare ``[Errno 17] File exists`` or ``[Errno 20]
    Not a directory``). Creates nothing. Returns ``Path(path)``.

    Raises:
        OutputPathError: a file stands where ``path``'s folder, or a folder above it, should be
            (a ``ValueError`` naming that file and ``path``).
        MissingOutputFolderError: ``path``'s folder does not exist and ``make_parent`` is False
            (a ``FileNotFoundError`` naming ``path``).
    """
    path = Path(path)
    folder = path.parent
    if folder.is_dir():
        return path
    nearest = folder  # the nearest path at or above the folder that exists (under a file none below it does)
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if nearest.exists() and not nearest.is_dir():
        raise OutputPathError(f"path: {str(nearest)!r} is a file, not a folder, so {str(path)!r} cannot be written "
                              "in it; expected a path in a folder")
    if not make_parent:
        raise MissingOutputFolderError(f"path: the folder of {str(path)!r} is not an existing folder; create it or "
                                       "pass make_parent=True")
    return path


def current_umask() -> int:
    """The process umask (e.g. ``0o022``), read from ``/proc/self/status`` where it exists (no
    change, even for an instant), else by setting and restoring it with ``os.umask``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_created(path) -> Path:
    """Give ``path`` the permissions a new file (``0o666 & ~umask``) or folder
    (``0o777 & ~umask``) gets from ``open()`` / ``mkdir()``: call it on the temporary made by
    ``tempfile.mkstemp`` / ``mkdtemp`` before it is moved into place. Returns ``path``."""
    path = Path(path)
    base = 0o777 if path.is_dir() else 0o666
    os.chmod(path, base & ~current_umask())
    return path


def write_through_temporary(path, write: Callable[[str], None], suffix: str, make_parent: bool = False,
                            overwrite: bool = True) -> Path:
    """Write a file with ``write(temporary_path)`` into a temporary in ``path``'s folder
    (``.<name>.<random><suffix>``, given the umask's permissions by :func:`as_created`), then move it
    over ``path`` with ``os.replace``: a reader never sees a half-written file, an interrupted or
    failed write leaves an existing ``path`` whole (and other hard links to it keep its contents),
    and the temporary is removed on any error. ``path``'s folder must exist unless ``make_parent``
    (then it is created; before, it was always created without a word). Used by
    :func:`~hf_neuroformer.io.write_nwb` and :func:`~hf_neuroformer.io.write_npz`.

    With ``overwrite=False`` the finished temporary is hard-linked to ``path`` (``os.link``), which
    fails when ``path`` exists: a file that appeared there while this one was being written (another
    run writing the same output) is kept, not replaced. The callers' check before the write
    (:func:`check_output_file`) could not see it, and ``os.replace`` overwrote it without a word. On a
    file system without hard links, ``path`` is checked just before ``os.replace``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: ``path`` is an existing directory, or is under a file (checked before the
            temporary is made, by :func:`check_output_file` and :func:`check_output_folder`).
        MissingOutputFolderError: ``path``'s folder does not exist and ``make_parent`` is False.
        FileExistsError: ``overwrite`` is False and ``path`` exists when the file is moved there
            (the temporary is removed, ``path`` left as it is); a broken symbolic link at ``path`` is
            named as such, not as a file written meanwhile.
        whatever ``write`` raises (nothing is left behind then).
    """
    path = Path(path)
    if path.is_dir():  # os.replace onto it failed only after the whole file was written
        check_output_file(path, overwrite=True)
    check_output_folder(path, make_parent)
    if make_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        as_created(tmp)  # mkstemp makes it 0600: give it the umask's bits, as a plain open() would
        write(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_without_overwrite(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _move_without_overwrite(tmp: str, path: Path) -> None:
    """Move the finished temporary ``tmp`` to ``path`` unless ``path`` exists (FileExistsError)."""
    def exists() -> FileExistsError:
        if path.is_symlink() and not path.exists():  # a dangling link is no file written meanwhile: name it
            return FileExistsError(_broken_link_message(path))
        return FileExistsError(f"{path} already exists (written while this file was being written: another run "
                               "writing the same output?); it is left as it is; pass overwrite=True (CLI: --overwrite) "
                               "to replace it")

    try:
        os.link(tmp, path)  # atomic: fails when path exists, whatever wrote it since the check
    except FileExistsError:
        raise exists() from None
    except OSError:  # no hard links here (some network and FUSE file systems): check, then replace
        if os.path.lexists(path):
            raise exists() from None
        os.replace(tmp, path)
        return
    os.remove(tmp)
