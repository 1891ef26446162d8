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

__all__ = ["OutputPathError", "as_created", "check_output_file", "current_umask", "write_through_temporary"]


class OutputPathError(ValueError):
    """An output file path that no file can be written to: it names an existing directory."""


def check_output_file(path, overwrite: bool) -> Path:
    """Refuse an output file ``path`` before anything is written: a directory (always: ``overwrite``
    replaces a file, never a folder) and an existing file unless ``overwrite``. Returns ``Path(path)``.

    Raises:
        OutputPathError: ``path`` is an existing directory (a ``ValueError``, which the CLI reports in one
            line; ``os.replace`` of the finished temporary onto it raised ``IsADirectoryError`` naming the
            temporary, a traceback from the CLI).
        FileExistsError: ``path`` is an existing file and ``overwrite`` is False.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"path: {str(path)!r} is a directory; expected a file name (overwrite=True replaces "
                              "a file, never a directory)")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
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


def write_through_temporary(path, write: Callable[[str], None], suffix: str) -> Path:
    """Write a file with ``write(temporary_path)`` into a temporary in ``path``'s folder
    (``.<name>.<random><suffix>``, given the umask's permissions by :func:`as_created`), then move it
    over ``path`` with ``os.replace``: a reader never sees a half-written file, an interrupted or
    failed write leaves an existing ``path`` whole (and other hard links to it keep its contents),
    and the temporary is removed on any error. ``path``'s folder is created if missing. Used by
    :func:`~hf_neuroformer.io.write_nwb` and :func:`~hf_neuroformer.io.write_npz`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: ``path`` is an existing directory (checked before the temporary is made).
        whatever ``write`` raises (nothing is left behind then).
    """
    path = Path(path)
    if path.is_dir():  # os.replace onto it failed only after the whole file was written
        check_output_file(path, overwrite=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        as_created(tmp)  # mkstemp makes it 0600: give it the umask's bits, as a plain open() would
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
