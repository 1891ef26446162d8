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
from pathlib import Path

__all__ = ["as_created", "current_umask"]


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
