"""Strict JSON for the files this package writes (``metrics.json``, reports, scores).

Python's ``json`` writes NaN and inf as bare ``NaN`` / ``Infinity``, which is not JSON: other
tools (``jq``, JavaScript, many JSON libraries) refuse the whole file. Undefined values are
written as ``null`` instead, numpy scalars and arrays as Python numbers and lists.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np


def json_safe(value):
    """``value`` with NaN / inf -> None, numpy scalars -> Python, arrays and tuples -> lists,
    recursively; dict keys become strings. Anything else that JSON cannot hold -> ``str``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def write_atomic(path, data, make_parent: bool = False) -> Path:
    """Write ``data`` (``str``, written as UTF-8, or ``bytes``, e.g. a PNG or an ``.npy``) to
    ``path`` atomically: into a temporary file in the same folder (``.<name>.<pid>.tmp``, created
    with the process umask like any other file, not mkstemp's owner-only mode), then renamed over
    ``path`` (``os.replace``). A reader, or a run interrupted mid-write, sees the old file or the
    new one, never half of one; the temporary file is removed if the write fails. A replaced file
    keeps its permission bits; a symbolic link is written through (its target is replaced, the
    link stays).

    Args:
        path: the file to write (replaced if it exists; callers that must not overwrite check first).
        data: ``str`` or ``bytes``.
        make_parent: create the parent folder if missing (default: it must exist).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``data`` is neither ``str`` nor ``bytes``.
        FileNotFoundError: the parent folder is missing and ``make_parent`` is False (naming ``path``).
    """
    path = Path(path)
    if not isinstance(data, (str, bytes)):
        raise TypeError(f"data: expected str or bytes to write to {str(path)!r}, got {type(data).__name__}")
    if make_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():  # the OS error named the temporary '.<name>.<pid>.tmp', not this path
        raise FileNotFoundError(f"path: the folder of {str(path)!r} is not an existing folder; create it or pass "
                                "make_parent=True")
    # a link is written through (its target replaced, the link kept), an existing file keeps its mode
    target = path.resolve() if path.is_symlink() else path
    mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else None
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path, obj, indent: int = 2) -> Path:
    """Write ``json_safe(obj)`` as strict JSON to ``path`` with :func:`write_atomic`, so a reader
    never sees half a file. Returns the path."""
    return write_atomic(path, json.dumps(json_safe(obj), indent=indent, allow_nan=False))


__all__ = ["json_safe", "write_atomic", "write_json"]
