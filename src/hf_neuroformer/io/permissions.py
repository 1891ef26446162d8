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

__all__ = ["as_created", "current_umask", "write_through_temporary"]


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
        whatever ``write`` raises (nothing is left behind then).
    """
    path = Path(path)
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
