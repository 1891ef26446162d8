"""Helpers shared by the benchmark scripts: where the shared recordings are, and replacing one
script's section of BENCHMARKS.md between its markers, keeping the rest."""

from __future__ import annotations

import os
from pathlib import Path

HEADER = "# Benchmarks\n\nEach section is written by the script it names.\n"


def data_root() -> Path:
    """The shared recordings: ``$NEUROFORMER_SHARED_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get("NEUROFORMER_SHARED_DATA")
    return Path(env) if env else (Path(__file__).resolve().parents[2] / "shared" / "data").resolve()


def replace_section(path: Path, start: str, end: str, section: str) -> Path:
    """Write ``section`` (which begins with ``start`` and ends with ``end``) into ``path``.

    An existing ``start`` ... ``end`` block is replaced in place; otherwise the section is
    appended. The file is written to a temporary name and moved into place.
    """
    path = Path(path)
    text = path.read_text() if path.exists() else HEADER
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
