"""Readers and writers: every format becomes a :class:`~hf_neuroformer.recording.SpikeRecording`.

=================================================  =========================================
input                                              reader
=================================================  =========================================
``*.nwb``                                          :func:`read_nwb` (pynwb)
``*.npz`` (``spike_times``, ``unit_ids``, ...)     :func:`read_npz`
``*.mat`` MATLAB v7.3 with ``sp_count``            :func:`read_steinmetz_spcount` (h5py)
folder with ``spike_times.npy`` +                  :func:`read_allen_gratings`
``ii_spike_times.npy``
``*.csv`` / ``*.parquet`` (one row per spike)      :func:`from_dataframe` (pandas)
folder with ``spikes.mat`` +                       :func:`read_nelpy_linear_track` (nelpy
``trajectory.videoPositionTracking``               linear track: x, y, speed, run/rest)
folder with ``params.py`` + ``spike_times.npy``    :func:`read_phy` (Kilosort / Phy spike
(Kilosort / Phy output)                            sorting: spikes, cluster labels)
=================================================  =========================================

:func:`load_recording` picks the reader from the path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np

from ..recording import RecordingValidationError, SpikeRecording, names_without_whitespace, widen_stored_times
from .arrays import from_arrays, from_dataframe, read_allen_gratings, read_npz, warnings_at_caller, write_npz
from .binned import DEFAULT_TRIAL_GAP, from_binned_counts, read_steinmetz_spcount
from .nelpy import is_nelpy_linear_track, read_nelpy_linear_track
from .nwb import read_nwb, read_nwb_scratch, write_nwb
from .permissions import MissingOutputFolderError, OutputPathError
from .phy import is_phy_folder, read_phy

__all__ = [
    "is_model_directory",
    "check_input_exists",
    "read_error",
    "load_recording",
    "read_nwb",
    "write_nwb",
    "read_nwb_scratch",
    "from_arrays",
    "read_npz",
    "write_npz",
    "MissingOutputFolderError",
    "OutputPathError",
    "from_dataframe",
    "read_allen_gratings",
    "from_binned_counts",
    "read_steinmetz_spcount",
    "read_nelpy_linear_track",
    "read_phy",
    "DEFAULT_TRIAL_GAP",
    "SUPPORTED_FORMATS",
]

SUPPORTED_FORMATS = (
    ".nwb (NWB units table)",
    ".npz (spike_times, unit_ids[, unit_names, unit_areas, time_domain, session, and the other fields write_npz stores])",
    ".mat (MATLAB v7.3 / HDF5 with sp_count: binned counts, trials x bins x units)",
    "folder with spike_times.npy + ii_spike_times.npy + stim_label.npy: Allen gratings",
    ".csv / .parquet (one row per spike: columns time, unit)",
    "folder with spikes.mat + trajectory.videoPositionTracking: nelpy linear track",
    "folder with params.py + spike_times.npy (+ spike_clusters.npy, cluster_group.tsv): Kilosort / Phy",
)

_DATAFRAME_KW = ("time_col", "unit_col")
# the suffixes of the files load_recording reads (SUPPORTED_FORMATS)
RECORDING_FILE_SUFFIXES = (".nwb", ".npz", ".mat", ".csv", ".parquet")


def check_input_exists(path, flag: str = "--data") -> Path:
    """``Path(path)`` if it exists; else FileNotFoundError ``"<flag>: no such file or directory
    '<path>'"``, the wording every command uses for a mistyped input path (the readers' own
    messages named no flag). A missing path under ``shared/data`` (the README's examples) also says
    that those examples run from the repository's root, beside which the shared recordings lie."""
    path = Path(path)
    if not path.exists():
        hint = ""
        if "shared/data" in path.as_posix():  # a README example run from another folder
            hint = (f" (the README's examples read the shared recordings at ../shared/data, beside the repository: "
                    f"run them from the repository's root, {str(Path.cwd())!r} is the current folder, or give the "
                    "path where the recordings lie)")
        raise FileNotFoundError(f"{flag}: no such file or directory {str(path)!r}{hint}")
    return path


def read_error(err: Exception, flag: str, path) -> ValueError:
    """A reader's error ``err`` on ``path`` as one line that names the option and the file
    (``"<flag>: ..."``): the readers' own messages, e.g. pandas' "No columns to parse from file",
    do not always say which file, and none names the option."""
    msg = str(err.args[0] if isinstance(err, KeyError) and err.args else err)
    if isinstance(err, OSError) and getattr(err, "strerror", None) and not msg.startswith(str(path)):
        msg = err.strerror  # "[Errno 13] Permission denied: 'x'" -> "Permission denied"
    where = f"{flag}: " if str(path) in msg else f"{flag}: {str(path)!r}: "
    return ValueError(where + msg)


#: The name of a shard :func:`hf_neuroformer.windows.prepare_windows` writes into ``data/``.
_SHARD_NAME = re.compile(r"(train|validation|test)-\d{5}-of-\d{5}\.parquet")


def _prepared_directory_of(path: Path) -> Optional[Path]:
    """The ``neuroformer prepare`` directory that ``path`` lies in (its ``data/`` folder, a shard
    in it, or its ``manifest.json``), else None."""
    if path.name == "manifest.json" and path.is_file():
        return path.parent
    if path.is_dir() and path.name == "data" and (path.parent / "manifest.json").is_file():
        return path.parent
    if path.is_file() and path.suffix == ".parquet" and path.parent.name == "data" \
            and (path.parent.parent / "manifest.json").is_file():
        return path.parent.parent
    return None


def _is_allen_folder(path: Path) -> bool:
    """A folder :func:`read_allen_gratings` reads: ``spike_times.npy`` and ``ii_spike_times.npy``."""
    return (path / "spike_times.npy").exists() and (path / "ii_spike_times.npy").exists()


def _recording_subfolders_hint(path: Path, limit: int = 5) -> str:
    """``". A recording one folder down: X (Kilosort / Phy folder); pass it ..."`` for the immediate
    subfolders of ``path`` that a folder reader recognises (Kilosort 4 writes its Phy folder into
    ``<data folder>/kilosort4``, so the folder a user passes is often the one above it), then
    ``". A file in it that may be a recording: F; pass the file itself"`` for its files of a suffix a
    file reader takes (``RECORDING_FILE_SUFFIXES``); ``""`` when there is none. At most ``limit`` of
    each are named (str)."""
    found = []
    try:
        entries = sorted(path.iterdir())
    except OSError:
        return ""
    subs = [p for p in entries if p.is_dir()]
    for sub in subs:
        if _is_allen_folder(sub):
            found.append((sub, "Allen gratings folder"))
        elif is_phy_folder(sub):
            found.append((sub, "Kilosort / Phy folder"))
        elif is_nelpy_linear_track(sub):
            found.append((sub, "nelpy linear-track folder"))
    # a file a file reader takes, in the folder itself: --data ../shared/data/zheng2022_human_mtl (the folder of
    # one .nwb) listed every format and named neither the file nor that a file is what it wants
    files = [p for p in entries if p.is_file() and p.suffix.lower() in RECORDING_FILE_SUFFIXES]
    hint = ""
    if found:
        named = ", ".join(f"{sub} ({what})" for sub, what in found[:limit])
        more = f" and {len(found) - limit} more" if len(found) > limit else ""
        hint = (f". A recording one folder down: {named}; pass it as the recording" if len(found) == 1
                else f". Recordings one folder down: {named}{more}; pass one as the recording")
    if files:
        named = ", ".join(str(f) for f in files[:limit])
        more = f" and {len(files) - limit} more" if len(files) > limit else ""
        hint += (f". A file in it that may be a recording: {named}; pass the file itself" if len(files) == 1
                 else f". Files in it that may be recordings: {named}{more}; pass one of them")
    return hint


def is_model_directory(path) -> bool:
    """Whether ``path`` is a folder holding a saved model (``config.json`` and weights:
    ``model.safetensors``, the index of weights saved in shards, or ``pytorch_model.bin``), as
    ``neuroformer train`` / ``finetune`` write it: a recording reader refuses it, naming --model."""
    path = Path(path)
    return path.is_dir() and (path / "config.json").is_file() and any((path / f).is_file() for f in (
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"))


@warnings_at_caller
def load_recording(path, epoch: Optional[str] = None, **kwargs) -> SpikeRecording:
    """Load a recording from any supported file or folder.

    Args:
        path: file or folder; the reader is chosen by suffix (see :data:`SUPPORTED_FORMATS`).
        epoch: when given, return ``recording.select_epoch(epoch)`` (e.g. ``"wake"``); for NWB
            files the epochs include every named interval and every interval table (see
            :func:`read_nwb`). An epoch made of several intervals (an interval table such as
            A2929's ``"sleep_ripples"``, 594 ripples) selects the union of its intervals, not
            their span: only the spikes, behaviour and events inside them, with
            ``time_support`` = the intervals, so splits, windows and generation stay inside them
            (see :meth:`SpikeRecording.select_epoch`; for the span, pass an epoch that covers it,
            e.g. ``"sleep"``).
        **kwargs: passed to the reader (e.g. ``session=`` for NWB, ``bin_size=`` / ``seed=``
            for ``.mat``, ``inter_trial_gap=`` for Allen, ``time_col=`` / ``unit_col=`` for
            tables). A ``.csv`` / ``.parquet`` table's session is its file stem (whitespace
            replaced by ``_``) unless ``session=`` is given.

    Returns:
        SpikeRecording (times in seconds).

    Warns:
        The reader's warnings, each pointing at the line that called ``load_recording`` (as when the
        reader is called directly; see :func:`~hf_neuroformer.io.arrays.warnings_at_caller`). A
        ``.parquet`` table's float32 spike times are read with their rounding and a warning, as the
        other readers read a file's (:func:`~hf_neuroformer.recording.widen_stored_times`;
        :func:`from_dataframe` refuses a caller's float32 column).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the format is not supported (the message lists the supported formats).
        KeyError: ``epoch`` is not one of the recording's epochs (lists those that exist).
        RecordingValidationError: the data are invalid (see each reader); a ``.csv`` /
            ``.parquet`` table that is empty or has no rows (no spike), a ``.parquet`` that pyarrow cannot
            read (not Parquet, or cut short), a ``.csv`` that is not UTF-8 (names
            the line and byte) or that pandas cannot parse. Every refusal of :func:`from_dataframe` for a
            table names its file (and for a ``.csv``, that its rows count from 0 below the header line).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"recording not found: {path}")
    suffix = path.suffix.lower()
    supported = "; ".join(SUPPORTED_FORMATS)
    prepared = _prepared_directory_of(path)
    if prepared is not None:  # a shard or the manifest of a 'neuroformer prepare' output, not a recording
        what = "folder" if path.is_dir() else "file"
        role = "holds the shards of" if path.is_dir() else "is part of"
        raise ValueError(f"unsupported recording {what} {path}: it {role} the prepared directory {prepared} "
                         "(neuroformer prepare); pass that directory, the one holding manifest.json, to train on "
                         "its windows")
    if path.is_dir() and (path / "manifest.json").is_file() and (path / "data").is_dir():
        raise ValueError(f"unsupported recording folder {path}: it is a prepared directory (neuroformer prepare), "
                         "windows rather than a recording; only 'neuroformer train --data' streams it, every other "
                         "reader needs the recording it was prepared from")
    if (path.is_dir() and not (path / "manifest.json").exists()
            and any(_SHARD_NAME.fullmatch(p.name) for p in (path / "data").glob("*.parquet"))):
        # listed every format, not what it lacked; config.json was required too, so a copy or a prepare cut short
        # before it (prepare writes the shards first, a copy may take data/ first) still listed them
        from ..windows import PREPARED_JSON_FILES

        missing = [n for n in PREPARED_JSON_FILES if not (path / n).is_file()]
        raise ValueError(f"unsupported recording folder {path}: it looks like a prepared directory (neuroformer "
                         f"prepare: data/<split>-NNNNN-of-NNNNN.parquet shards) without {', '.join(missing)} (a copy "
                         "or a prepare cut short?); manifest.json lists and checks the shards; prepare the windows "
                         "again (neuroformer prepare), or copy the whole directory")
    if path.is_dir():
        if _is_allen_folder(path):
            rec = read_allen_gratings(path, **kwargs)
        elif is_phy_folder(path):
            rec = read_phy(path, **kwargs)
        elif is_nelpy_linear_track(path):
            rec = read_nelpy_linear_track(path, **kwargs)
        elif is_model_directory(path):
            raise ValueError(f"unsupported recording folder {path}: it is a model directory (config.json and "
                             "weights), not a recording; pass it as --model (Python: the model_dir argument), and "
                             "the recording it was trained on as --data")
        else:
            raise ValueError(f"unsupported recording folder {path}: supported formats are {supported}"
                             f"{_recording_subfolders_hint(path)}")
    elif suffix == ".nwb":
        rec = read_nwb(path, **kwargs)
    elif suffix == ".npz":
        rec = read_npz(path, **kwargs)
    elif suffix == ".mat":
        import h5py

        if not h5py.is_hdf5(path):  # a v5 file holding sp_count was called unsupported without a word of why
            from .binned import what_the_mat_file_holds

            raise ValueError(f"unsupported .mat file {path}: expected MATLAB v7.3 (HDF5) holding 'sp_count'; "
                             f"{what_the_mat_file_holds(path)}; supported formats are {supported}")
        with h5py.File(path, "r") as f:
            has = "sp_count" in f
        if not has:
            raise ValueError(f"unsupported .mat file {path}: no 'sp_count' dataset; supported formats are {supported}")
        rec = read_steinmetz_spcount(path, **kwargs)
    elif suffix in (".csv", ".parquet"):
        import pandas as pd
        from pyarrow import ArrowException

        df_kw = {k: kwargs.pop(k) for k in _DATAFRAME_KW if k in kwargs}
        try:
            df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        except pd.errors.EmptyDataError:  # pandas' "No columns to parse from file" named no file
            raise RecordingValidationError(f"{path}: expected a table with one row per spike (columns "
                                           f"{df_kw.get('time_col', 'time')!r}, {df_kw.get('unit_col', 'unit')!r}), "
                                           "the file is empty") from None
        except UnicodeDecodeError:  # pandas' "'utf-8' codec can't decode byte 0xb5 in position 1" named no file,
            # and its position counts from a chunk: the file, line and byte, as read_phy's cluster tables say
            from .phy import _table_text

            try:
                _table_text(path, path.read_bytes())
            except ValueError as e:
                raise RecordingValidationError(str(e)) from None
            raise
        except ArrowException as e:  # pyarrow's "Parquet magic bytes not found in footer ..." said not what to give
            raise RecordingValidationError(
                f"{path}: expected a Parquet table with one row per spike (columns {df_kw.get('time_col', 'time')!r}, "
                f"{df_kw.get('unit_col', 'unit')!r}), as pandas DataFrame.to_parquet or pyarrow write it; this file "
                f"is not readable as Parquet, it is cut short or not Parquet at all (pyarrow: {str(e).strip()})"
            ) from None
        except pd.errors.ParserError as e:  # "Error tokenizing data. C error: Expected 2 fields in line 3, saw 3"
            raise RecordingValidationError(f"{path}: expected a comma-separated table with one row per spike, "
                                           f"pandas could not parse it ({str(e).strip()})") from None
        if not len(df):
            # a header without rows gave a recording of no unit and no spike, refused only later (or trained on
            # nothing); the NWB and Phy readers refuse a file without spikes too
            raise RecordingValidationError(f"{path}: expected a table with one row per spike, it has columns "
                                           f"{list(df.columns)} but no rows")
        time_col = df_kw.get("time_col", "time")
        if time_col in df.columns and isinstance(df[time_col].dtype, np.dtype) and df[time_col].dtype.kind == "f":
            # a parquet file's float32 times were refused as a caller's are ("pass float64 times from the source"),
            # which a file cannot: read with the rounding it holds, warned, as every other reader reads its file
            df[time_col] = widen_stored_times(df[time_col].to_numpy(), f"{path.name}[{time_col!r}] times",
                                              "load_recording")
        # the file's stem, as for .npz and NWB: "session0" for every table gave two animals' files the same
        # unit tokens, so a model trained on one took the other for its own units
        kwargs.setdefault("session", names_without_whitespace([path.stem])[0][0])
        try:
            rec = from_dataframe(df, **df_kw, **kwargs)
        except ValueError as e:  # "time: ... row 1 holds nan", "found columns ['time;unit']" named no file
            if e.args and isinstance(e.args[0], str) and str(path) not in e.args[0]:
                rows = (" (rows counted from 0 below the header line)"
                        if suffix == ".csv" and re.search(r"\brows? \d", e.args[0]) else "")
                e.args = (f"{path}: {e.args[0]}{rows}", *e.args[1:])
            raise
    elif path.is_file() and is_phy_folder(path.parent):
        # spike_times.npy / params.py of a sort: the folder is the recording, not one of its files
        raise ValueError(f"{path} is a file of the Phy / Kilosort folder {path.parent}: pass the folder itself "
                         f"(load_recording({str(path.parent)!r}), --data {path.parent})")
    else:
        raise ValueError(f"unsupported recording format {path.suffix!r} ({path}): supported formats are {supported}")
    if epoch is not None:
        rec = rec.select_epoch(epoch)
    return rec
