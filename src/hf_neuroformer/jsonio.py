"""Strict JSON for the files this package writes (``metrics.json``, reports, scores).

Python's ``json`` writes NaN and inf as bare ``NaN`` / ``Infinity``, which is not JSON: other
tools (``jq``, JavaScript, many JSON libraries) refuse the whole file. Undefined values are
written as ``null`` instead, numpy scalars and arrays as Python numbers and lists.
"""

from __future__ import annotations

import json
import math
import os
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


def write_json(path, obj, indent: int = 2) -> Path:
    """Write ``json_safe(obj)`` as strict JSON to ``path`` atomically (a temporary file in the same
    folder, then renamed over it), so a reader never sees half a file. Returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(json_safe(obj), indent=indent, allow_nan=False))
    os.replace(tmp, path)
    return path


__all__ = ["json_safe", "write_json"]
