"""Reader for spike-sorting output in the Phy / Kilosort folder format.

The folder (written by Kilosort 1-4 and curated in Phy; the format as spikeinterface's
``read_phy`` reads it, spikeinterface 0.105, and as the Phy documentation describes it) holds:

``params.py``
    Python assignments; ``sample_rate`` (Hz) is the one used here.
``spike_times.npy``
    ``(n_spikes,)`` or ``(n_spikes, 1)`` uint64: each spike's sample index from the start of
    the recording.
``spike_clusters.npy``
    ``(n_spikes,)`` int: each spike's cluster id after curation (without it, Kilosort's
    ``spike_templates.npy``: the template ids before curation).
``cluster_group.tsv`` / ``cluster_info.tsv`` / ``cluster_KSLabel.tsv`` (optional)
    One row per cluster (``cluster_id``; ``id`` in older ``cluster_info.tsv``; Phy 1 wrote a
    tab-separated ``cluster_groups.csv``): ``group`` is the curator's label (``good``, ``mua``,
    ``noise``, ``unsorted``), ``KSLabel`` Kilosort's own.

``params.py`` is run as Python (as Phy does); numpy and pandas read the spikes and tables; this
module turns them into a :class:`SpikeRecording` and says what it leaves out.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Iterable, Optional, Tuple

import numpy as np

from ..configuration_neuroformer import is_finite_number
from ..recording import RecordingValidationError, SpikeRecording, count_noun, names_without_whitespace
from .arrays import from_arrays, warn_repeated_spikes, warnings_at_caller

#: Lowest ``sample_rate`` (Hz) of ``params.py`` taken without a warning: spike sorting needs the raw
#: voltage sampled at several kHz (Kilosort's data are 20-40 kHz); a smaller number is a rate in kHz.
MIN_SORT_RATE_HZ = 1000.0

# the labels a curator gives in Phy (cluster_group.tsv's "group")
PHY_GROUPS = ("good", "mua", "noise", "unsorted")


def is_phy_folder(path) -> bool:
    """True for a folder that looks like Kilosort / Phy output: ``spike_times.npy`` with
    ``params.py``, ``spike_clusters.npy`` or ``spike_templates.npy``, or ``params.py`` with one of
    the last two (so that a folder lacking ``params.py`` or ``spike_times.npy`` gets
    :func:`read_phy`'s error naming it, not a list of every format)."""
    path = Path(path)
    clusters = any((path / f).is_file() for f in ("spike_clusters.npy", "spike_templates.npy"))
    if (path / "spike_times.npy").is_file():
        return clusters or (path / "params.py").is_file()
    return clusters and (path / "params.py").is_file()


# folder names a sorter gives every output it writes: Kilosort 4 (<data folder>/kilosort4) and
# spikeinterface's run_sorter (<output folder>/sorter_output); as a session name they would give the
# units of every session sorted this way the same tokens ("kilosort4/12")
SORTER_FOLDER_NAMES = ("kilosort4", "sorter_output")


def default_phy_session(folder) -> str:
    """The session name :func:`read_phy` gives ``folder`` without ``session=`` (str): the folder's
    name, or ``"<parent>_<name>"`` when the name is one of :data:`SORTER_FOLDER_NAMES` (compared
    without case), each run of whitespace replaced by ``_`` (a unit token holds none). A unit's
    token is ``"<session>/<cluster id>"``, so two sessions read under one name would share them."""
    path = Path(folder).resolve()
    name = path.name
    if name.lower() in SORTER_FOLDER_NAMES and path.parent.name:
        name = f"{path.parent.name}_{name}"
    return names_without_whitespace([name])[0][0]


def _some(ids: np.ndarray, k: int = 10) -> str:
    """The first ``k`` cluster ids of ``ids``, comma-separated, then ``...`` when there are more."""
    return ", ".join(map(str, ids[:k].tolist())) + (", ..." if ids.size > k else "")


def _groups(exclude_groups) -> Tuple[str, ...]:
    if isinstance(exclude_groups, str):
        return (exclude_groups,)
    groups = tuple(exclude_groups)
    bad = [g for g in groups if not isinstance(g, str)]
    if bad:
        raise ValueError(f"exclude_groups: expected cluster group names (strings such as 'noise'), got {bad!r}")
    return groups


def _read_params(folder: Path) -> Tuple[float, dict]:
    """``(sample_rate, params)``: the sample rate (Hz) and every name of ``folder/params.py``
    (lower case), read as Phy reads it: executed as Python (:func:`runpy.run_path`), its names
    compared without case (as spikeinterface's ``read_python`` does)."""
    import runpy

    path = folder / "params.py"
    try:
        params = {str(k).lower(): v for k, v in runpy.run_path(str(path)).items() if not str(k).startswith("__")}
    except SyntaxError as e:
        line = (e.text or "").strip()
        hint = (" (a Windows path with backslashes needs a raw string: dat_path = r'C:\\...', or forward "
                "slashes)") if "\\" in line else ""
        raise ValueError(f"{path}: line {e.lineno} is not valid Python: {line!r}: {e.msg}{hint}") from None
    except Exception as e:  # a name it does not define, an import it cannot make: the file, not the folder, is wrong
        raise ValueError(f"{path}: could not be run as Python ({type(e).__name__}: {e})") from None
    if "sample_rate" not in params:
        raise ValueError(f"{path}: no sample_rate (expected a line such as 'sample_rate = 30000.0', in Hz)")
    if isinstance(params["sample_rate"], (str, bytes)):  # '30000' was read as 30000 Hz: Phy keeps a number
        raise ValueError(f"{path}: sample_rate: expected a number of Hz (e.g. sample_rate = 30000.0), got the text "
                         f"{params['sample_rate']!r}; write it without quotes")
    try:
        # a bool is no rate: True was read as 1 Hz (spike times 30000 times too long, named only as 'kHz for Hz?')
        fs = float("nan") if isinstance(params["sample_rate"], (bool, np.bool_)) else float(params["sample_rate"])
    except (TypeError, ValueError):
        fs = float("nan")
    if not (np.isfinite(fs) and fs > 0):
        raise ValueError(f"{path}: sample_rate: expected a positive number of Hz, got {params['sample_rate']!r}")
    return fs, params


def _whole(value, least: int) -> Optional[int]:
    """``value`` as an int when it is a whole number (int, or a float without a fraction, not a
    bool) of at least ``least``, else None."""
    if not is_finite_number(value) or float(value) != int(value) or int(value) < least:
        return None  # an integer past float range (10**400 in params.py) too: not a count of samples
    return int(value)


def _raw_data_samples(folder: Path, params: dict) -> Optional[int | list]:
    """Samples per channel of the raw recording the sort was made from: the size of the files
    ``params.py`` names as ``dat_path`` (one path or a list, relative to ``folder`` unless
    absolute; ``offset`` header bytes skipped in each), over ``n_channels_dat`` channels of
    ``dtype`` (default int16); None when no file is named (an empty name names none), and the
    list of the named paths that are not there (str) when one is missing (the binary often stays on
    the acquisition machine: :func:`read_phy` warns, naming them).

    Warns (``UserWarning``, naming the field and the expectation) and returns None when the files
    are there but ``params.py`` does not describe them: ``dat_path`` not a path or list of paths,
    ``n_channels_dat`` missing or not a positive whole number, ``dtype`` not the name of a numeric
    NumPy type, ``offset`` not a whole number of bytes >= 0 or past the end of a file. Warns (and
    counts the whole samples) when a file's data is not a whole number of samples of
    ``n_channels_dat`` x ``dtype`` (other settings than the file was written with)."""
    where = folder / "params.py"
    paths = params.get("dat_path")
    if paths is None:
        return None
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not (isinstance(paths, (list, tuple)) and all(isinstance(p, (str, Path)) for p in paths)):
        warnings.warn(f"read_phy: {where}: dat_path: expected a file name or a list of file names, got {paths!r}; "
                      "the raw data file does not end the recording (it ends after the last spike)")
        return None
    # an empty name ('' : no binary was written beside the sort) names no file
    files = [Path(p) if Path(p).is_absolute() else folder / p for p in paths if str(p)]
    if not files:
        return None
    missing = [str(f) for f in files if not f.is_file()]
    if missing:  # said by read_phy, with the end time it takes from the spikes instead
        return missing

    def unusable(field: str, expected: str) -> None:
        warnings.warn(f"read_phy: {where}: {field}: expected {expected}, got {params.get(field)!r}; the raw data "
                      f"{'file' if len(files) == 1 else 'files'} {[str(f) for f in files]} "
                      f"{'does' if len(files) == 1 else 'do'} not end the recording (it ends after the last spike)")

    n_channels = _whole(params.get("n_channels_dat"), 1)
    if n_channels is None:
        return unusable("n_channels_dat", "the number of channels in the raw data file, a whole number >= 1")
    dtype = params.get("dtype", "int16")
    try:
        # a name ('int16'), or a NumPy type (np.int16, in a params.py that imports numpy)
        numpy_type = isinstance(dtype, type) and issubclass(dtype, np.generic)
        dtype = np.dtype(dtype) if isinstance(dtype, (str, np.dtype)) or numpy_type else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "iuf":
        return unusable("dtype", "the name of a numeric NumPy type of the samples, such as 'int16'")
    offset = _whole(params.get("offset", 0) or 0, 0)
    if offset is None:
        return unusable("offset", "the bytes of header before the samples, a whole number >= 0")
    frame = n_channels * dtype.itemsize
    total = 0
    for f in files:
        size = f.stat().st_size
        if size < offset:
            return unusable("offset", f"at most the size of {f} ({size} bytes)")
        if (size - offset) % frame:
            warnings.warn(f"read_phy: {f}: {size - offset} bytes of samples (after offset {offset}) are not a whole "
                          f"number of samples of n_channels_dat {n_channels} x dtype {dtype.name} ({frame} bytes): "
                          "params.py may not describe the file; its whole samples are counted")
        total += (size - offset) // frame
    return total


def _warn_inexact_float_samples(path: Path, samples: np.ndarray, fs: float) -> None:
    """Warn when ``spike_times.npy`` holds its sample indices as floats (whole numbers, checked
    before) at or past the whole number below which the float type holds every one (2**24 =
    16,777,216 for float32, 9.3 min at 30 kHz; 2**11 for float16): such indices were rounded to
    the type's step when written, silently (the rule of :func:`~hf_neuroformer.recording.widen_stored_times`
    for a file's narrow float times: the file holds no more precision, so they are read, named)."""
    limit = 2 ** (np.finfo(samples.dtype).nmant + 1)
    past = samples >= limit  # a stored 2**24 may be a rounded 2**24 + 1
    if not past.any():
        return
    top = float(np.max(samples))
    step = float(np.spacing(samples.dtype.type(top)))
    warnings.warn(f"read_phy: {path}: sample indices stored as {samples.dtype}, which holds every whole number only "
                  f"below {limit} ({limit / fs:g} s at sample_rate {fs:g} Hz); {int(past.sum())} spikes lie "
                  f"at or past it (up to sample {top:.0f}), where {samples.dtype} steps by up to {step:g} samples, so their "
                  f"samples may be off by up to {step / 2:g} ({step / 2 / fs * 1e6:.3g} µs); read as stored (the file "
                  "holds no more precision): write integer sample indices (Kilosort writes uint64)",
                  UserWarning, stacklevel=3)


def _warn_samples_out_of_order(path: Path, samples: np.ndarray, fs: float) -> None:
    """Warn when the sample indices ``samples`` (``(n_spikes,)``, of ``spike_times.npy`` at
    ``path``, ``fs`` Hz) step back: Kilosort writes every spike in ascending sample order, so a
    step back is two sorts' files concatenated or a file edited after the sort. The spikes are
    sorted by time later (:func:`from_arrays`), none left out for it; before, without a word
    (read_nwb warns of a unit's spike times out of order so)."""
    back = np.flatnonzero(samples[1:] < samples[:-1]) + 1  # spike k comes before spike k - 1 (no uint64 diff)
    if not back.size:
        return
    k = int(back[0])
    warnings.warn(
        f"read_phy: {path}: sample indices out of ascending order ({count_noun(back.size, 'step')} back in "
        f"time among {samples.size} spikes; first: spike {k} at sample {samples[k]:.0f} ({samples[k] / fs:g} s) "
        f"after sample {samples[k - 1]:.0f} ({samples[k - 1] / fs:g} s)); sorted by time, no spike left out "
        "(Kilosort writes them ascending: two sorts' files concatenated, or edited after the sort?)",
        UserWarning, stacklevel=3)


def _load_npy(path: Path) -> np.ndarray:
    """The array of the ``.npy`` file ``path`` (:func:`numpy.load`, no pickles), or a ``ValueError``
    naming the file and what it holds instead: a file cut short or empty (a sort that stopped while
    writing it), one that is not ``.npy`` at all, or an array of Python objects. numpy's own messages
    named no file (an empty file raised ``EOFError``, which is no ``ValueError``, and a text file
    "contains pickled (object) data")."""
    with open(path, "rb") as f:
        head = f.read(len(np.lib.format.MAGIC_PREFIX))
    if head != np.lib.format.MAGIC_PREFIX:
        what = "is empty (0 bytes)" if not head else "does not start as a .npy file does (numpy's magic string)"
        raise ValueError(f"{path}: expected a NumPy .npy array of one integer per spike, the file {what}; was the sort "
                         "written out completely?")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # cut short, a damaged header, or an object array
        raise ValueError(f"{path}: expected a NumPy .npy array of one integer per spike, it could not be read "
                         f"({type(e).__name__}: {e})") from None


def _table_text(path: Path, raw: bytes) -> str:
    """The text of the cluster table ``path`` (bytes ``raw``, UTF-8 with or without a BOM), or a
    ``ValueError`` naming the file, the line and the byte that is not UTF-8 (pandas' own
    ``UnicodeDecodeError`` named no file: a table edited in a spreadsheet and saved as Windows
    "ANSI" text, with a µ or ö in a note)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ValueError(f"{path}: expected UTF-8 text, byte 0x{raw[e.start]:02x} on line {line} is not UTF-8 (a table "
                         "saved as Windows 'ANSI' / Latin-1 text?); save it as UTF-8") from None


def _cluster_tables(folder: Path):
    """``(tables, listed, labels)`` from the cluster tables of ``folder``: every ``.tsv`` / ``.csv``
    with a ``cluster_id`` column (``cluster_info`` also with ``id``), its separator read from
    its header line (Phy 1 wrote a tab-separated ``cluster_groups.csv``). ``tables``: the file
    names; ``listed``: the set of cluster ids any table lists (an outer join: Phy leaves a
    cluster it made by a merge or split out of ``cluster_KSLabel.tsv``); ``labels``: cluster id
    -> curation label (``group`` column, ``cluster_group`` before ``cluster_info``; blank is no
    label). A cluster one table lists twice with two labels is refused (``ValueError``, naming the
    file, rows and labels); a label that differs between two tables is named in a warning (the
    cluster and both labels and files), the first table's kept."""
    import pandas as pd

    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".tsv", ".csv")),
                   key=lambda p: (not p.name.startswith("cluster_group"), p.name))
    tables, listed, labels = [], set(), {}
    source, conflicts = {}, []  # cluster id -> the table its label came from; labels two tables disagree on
    for path in files:
        raw = path.read_bytes()
        header = raw.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")  # -sig: Excel opens a table with a BOM
        sep = "\t" if "\t" in header else ","
        cols = [c.strip() for c in header.strip().split(sep)]
        id_col = "cluster_id" if "cluster_id" in cols else "id" if "id" in cols and "cluster_info" in path.name \
            else None
        if id_col is None:
            if path.name.lower().startswith("cluster_"):  # Phy's name for a cluster table: one left empty (Phy
                # stopped while saving) or without its header was passed over without a word, its labels unapplied
                warnings.warn(f"read_phy: {path} has no 'cluster_id' column (first line {header.strip()[:80]!r}"
                              f"{', the file is empty' if not raw.strip() else ''}); it is not read as a cluster "
                              "table, so none of its labels (noise, ...) is applied")
            continue  # not a cluster table
        text = _table_text(path, raw)
        # a row with one field more than the header made pandas take its first column as the row index, so a
        # trailing tab on each row (as some scripts write) read the labels as the ids ("expected integer cluster
        # ids, got ['good', ...]"); blank extra fields are that trailing separator, others are refused
        for row, fields in enumerate(csv.reader(io.StringIO(text), delimiter=sep), start=1):
            if row > 1 and any(f.strip() for f in fields[len(cols):]):
                raise ValueError(f"{path}: row {row} has {len(fields)} fields but the header names {len(cols)} "
                                 f"({', '.join(cols)}): {fields!r}; one value per column expected")
        with warnings.catch_warnings():  # pandas' "loss of data" for the blank fields past the header's
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            table = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, index_col=False)
        table.columns = [c.strip() for c in table.columns]
        raw = table[id_col].str.strip()
        ids = pd.to_numeric(raw, errors="coerce")
        bad = ids.isna() | (ids != ids.round())
        if bad.any():
            raise ValueError(f"{path}: column {id_col!r}: expected integer cluster ids, got "
                             f"{raw[bad].tolist()[:5]!r} (row {int(np.flatnonzero(bad.to_numpy())[0]) + 2})")
        ids = ids.astype(np.int64).to_numpy()
        tables.append(path.name)
        listed.update(ids.tolist())
        if "group" in table.columns:
            here = {}  # cluster id -> (label, row) in this table
            for row, (c, g) in enumerate(zip(ids.tolist(), table["group"].str.strip()), start=2):
                if not g or g.lower() in ("nan", "none"):
                    continue
                if c in here and here[c][0] != g:
                    raise ValueError(f"{path}: cluster {c} is listed twice with different labels: {here[c][0]!r} "
                                     f"(row {here[c][1]}) and {g!r} (row {row}); keep one row per cluster")
                here.setdefault(c, (g, row))
            for c, (g, _) in here.items():
                if c not in labels:
                    labels[c], source[c] = g, path.name
                elif labels[c] != g:
                    conflicts.append(f"cluster {c}: {labels[c]!r} in {source[c]}, {g!r} in {path.name}")
    if conflicts:
        warnings.warn(f"read_phy: the cluster tables of {folder} label {count_noun(len(conflicts), 'cluster')} differently "
                      f"({'; '.join(conflicts[:5])}{'; ...' if len(conflicts) > 5 else ''}); the first table's label "
                      "is used (cluster_group.tsv, the curator's, before cluster_info.tsv): correct the other table "
                      "so that they agree")
    return tables, listed, labels


@warnings_at_caller
def read_phy(folder, *, exclude_groups: Iterable[str] = ("noise",), session: Optional[str] = None,
             time_domain: Optional[Tuple[float, float]] = None) -> SpikeRecording:
    """Read a Kilosort / Phy output folder into a recording.

    ``params.py`` is run as Python (as Phy does); the spikes and cluster tables are read with
    numpy and pandas as spikeinterface's ``read_phy`` reads them, except that the tables are
    joined on the union of their clusters (spikeinterface's inner join drops a cluster that one
    table misses, such as a cluster Phy made by a merge, absent from ``cluster_KSLabel.tsv``,
    with its spikes) and Phy 1's tab-separated ``cluster_groups.csv`` is read.

    Args:
        folder: the folder holding ``params.py`` and ``spike_times.npy`` (see the module text).
        exclude_groups: curation labels (``cluster_group.tsv`` / ``cluster_info.tsv`` column
            ``group``, compared exactly) whose clusters are left out, with their spikes; default
            ``("noise",)``, as Phy's own exports do; ``()`` keeps every cluster. Clusters without
            a ``group`` label (no curation file, or a blank label) are kept, and so are those whose
            label differs from an excluded one only in case (``"Noise"``), named in a warning.
            Clusters labelled ``mua`` (multi-unit activity) are kept by default, and counted in a
            warning (not under ``()``, which asks for every cluster); ``("noise", "mua")`` leaves
            them out too.
        session: session name; default :func:`default_phy_session` (the folder's name, with its parent's
            in front when the name is one a sorter gives every output, such as ``kilosort4``).
        time_domain: ``(start, stop)`` in seconds, holding every kept spike (the recording's
            extent, not a cut: cut with :meth:`SpikeRecording.restrict`); default from sample 0
            to the end of the raw data file ``params.py`` names (``dat_path``, ``n_channels_dat``,
            ``dtype``, ``offset``) when it is there, else to one sample after the last spike of any cluster
            in ``spike_times.npy`` (the sort alone does not store the recording's length: pass
            ``(0, n_samples / sample_rate)`` then for the whole recording; a named file that is not
            there is said in a warning, with the end time taken).

    Returns:
        SpikeRecording: one unit per kept cluster (a cluster with spikes that any table lists,
        or, without tables, any cluster with spikes), in ascending cluster id, named by its id (cluster 17
        is unit ``"17"``); spike times ``sample_index / sample_rate`` seconds (float64).

    Warns:
        UserWarning: the number of clusters and spikes left out by ``exclude_groups`` (per
            group), and of those kept whose label differs from an excluded group only in case
            (``"Noise"`` for ``"noise"``), of clusters labelled ``mua`` kept (with their spikes;
            not when ``exclude_groups`` is empty or names ``mua`` in any case), of spikes whose cluster no cluster table lists (left out, as Phy and
            spikeinterface do), naming the tables, and of listed clusters without spikes
            (left out: Phy keeps the ids of clusters merged away in its tables); spikes that
            repeat a sample of the same cluster (kept), per cluster; a raw data file shorter than
            the last spike, or raw data settings that do not describe the files beside the sort
            (``dat_path``, ``n_channels_dat``, ``dtype``, ``offset``, named; the recording then
            ends after the last spike); a raw data file ``dat_path`` names that is not there (named,
            with the end time taken from the last spike instead); a raw data file that is not a whole number of samples;
            a ``sample_rate`` below :data:`MIN_SORT_RATE_HZ` (1000 Hz: a rate in kHz, such as 30.0
            for 30 kHz, whose spike times come out 1000 times too long: named with the fix; a
            sort spanning days at a rate in Hz is taken as it is); a file named ``cluster_*`` without a
            ``cluster_id`` column (empty, or its header lost: its labels are not applied); a cluster that two cluster tables label differently (the
            cluster, both labels and files named; ``cluster_group.tsv``'s label is used);
            sample indices stored as floats (whole numbers) at or past the largest whole number below which
            the float type holds every one (2**24 for float32, 9.3 min at 30 kHz), rounded when written: file,
            dtype, limit, spikes past it and the rounding named (read as stored);
            sample indices of ``spike_times.npy`` out of ascending order (Kilosort writes them
            ascending: two sorts' files concatenated, or edited after the sort): the steps back
            counted and the first named (spike index, both samples); they are sorted by time, no
            spike left out for it (the rule of :func:`~hf_neuroformer.io.read_nwb`).

    Raises:
        FileNotFoundError: ``params.py``, ``spike_times.npy`` or both ``spike_clusters.npy`` and
            ``spike_templates.npy`` are missing.
        ValueError: ``params.py`` is not valid Python, fails when run, or has no positive
            ``sample_rate`` (a text such as ``'30000'`` included: expected ``sample_rate = 30000.0``);
            ``spike_times.npy`` or the cluster file is empty, cut short, not a ``.npy`` file or an
            array of Python objects (the file named); they differ in length or hold other than one
            non-negative integer per spike (negative int32 sample indices named as int32 overflow,
            past 2**31 - 1 samples: 19.9 h at 30 kHz), or sample indices past 2**53 or cluster ids past
            2**63 - 1 (a -1 written as uint64 reads 2**64 - 1); a cluster table's id column holds other than
            integers, or it lists one cluster twice with different labels, or it is not UTF-8 text,
            or a row holds more values than its header names columns (a trailing separator is
            allowed);
            the cluster tables list no cluster that has spikes (a table with its header only, or
            of another sort); ``exclude_groups`` holds something other than strings.
        RecordingValidationError: ``spike_times.npy`` is empty; every cluster is excluded; a given
            ``time_domain`` leaves out kept spikes (counted); the spikes are not a valid
            recording (see :func:`from_arrays`).
    """
    folder = Path(folder)
    missing = [f for f in ("params.py", "spike_times.npy") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"Phy / Kilosort folder {folder}: no {' or '.join(missing)} (expected the folder "
                                "Kilosort wrote, with params.py and spike_times.npy)")
    groups = _groups(exclude_groups)
    fs, params = _read_params(folder)
    cluster_file = next((f for f in ("spike_clusters.npy", "spike_templates.npy") if (folder / f).is_file()), None)
    if cluster_file is None:
        raise FileNotFoundError(f"Phy / Kilosort folder {folder}: no spike_clusters.npy or spike_templates.npy "
                                "(each spike's cluster)")
    samples = _load_npy(folder / "spike_times.npy")
    clusters = _load_npy(folder / cluster_file)
    for name, a in (("spike_times.npy", samples), (cluster_file, clusters)):
        if a.ndim > 2 or (a.ndim == 2 and a.shape[1] != 1) or a.dtype.kind not in "iuf":
            raise ValueError(f"{folder / name}: expected one integer per spike, shape (n,) or (n, 1), got "
                             f"shape {a.shape} dtype {a.dtype}")
    samples, clusters = samples.reshape(-1), clusters.reshape(-1)
    if samples.size != clusters.size:
        raise ValueError(f"{folder}: spike_times.npy holds {samples.size} spikes but {cluster_file} {clusters.size} "
                         "(one cluster per spike expected; were they written by the same sort?)")
    for name, a in (("spike_times.npy", samples), (cluster_file, clusters)):
        if a.size and (a.dtype.kind == "f" and not np.all(np.isfinite(a) & (a == np.round(a)))
                       or np.min(a) < 0):
            # fractions in spike_times.npy are most often seconds written where Phy keeps sample indices
            secs = (name == "spike_times.npy" and np.all(np.isfinite(a)) and np.min(a) >= 0
                    and np.any(a != np.round(a)))
            # int32 sample indices wrap to negative past 2**31 - 1 samples (19.9 h at 30 kHz)
            wrapped = name == "spike_times.npy" and a.dtype == np.int32 and np.min(a) < 0
            raise ValueError(f"{folder / name}: expected non-negative integers, got values such as "
                             f"{a[(a < 0) | ~np.isfinite(a) | (a != np.round(a))][:3].tolist()}"
                             + (f" (seconds? Phy stores sample indices: write np.round(times * sample_rate) with "
                                f"sample_rate {fs:g} Hz from params.py)" if secs else "")
                             + (f" ({int(np.sum(a < 0))} negative: int32 sample indices overflow past 2**31 - 1 "
                                f"samples, {(2**31 - 1) / fs / 3600:.3g} h at sample_rate {fs:g} Hz; a negative "
                                "index k was sample k + 2**32: save spike_times.npy as int64 or uint64 from the "
                                "sort)" if wrapped else ""))
    # a -1 (no sample, no cluster) written as uint64 reads 2**64 - 1: as a sample it was read as a spike 19.5
    # million years in, refused as lying outside a time_domain no one gave; as a cluster id it became -1
    for name, a, limit, what in (
            ("spike_times.npy", samples, 2**53, "sample indices up to 2**53 (float64 seconds hold every one below)"),
            (cluster_file, clusters, np.iinfo(np.int64).max, "cluster ids up to 2**63 - 1 (int64)")):
        if a.size and a.dtype.kind in "iu" and a.max() > limit:
            big = a[a > limit]
            raise ValueError(f"{folder / name}: expected {what}, got {big.size} larger, such as {int(big[0])}"
                             + (f" = 2**64 - {2**64 - int(big[0])} (a negative number written as {a.dtype}?)"
                                if a.dtype == np.uint64 and int(big[0]) > 2**63 else ""))
    if samples.dtype.kind == "f" and samples.size:
        _warn_inexact_float_samples(folder / "spike_times.npy", samples, fs)
    clusters = clusters.astype(np.int64)
    if not samples.size:
        raise RecordingValidationError(f"{folder / 'spike_times.npy'} holds no spike (did the sort finish?)")
    _warn_samples_out_of_order(folder / "spike_times.npy", samples, fs)

    tables, listed, labels = _cluster_tables(folder)
    n_in_file = int(samples.size)
    if time_domain is None:  # (the sort holds spikes: an empty one is refused above)
        last = int(np.max(samples)) + 1
        n_raw = _raw_data_samples(folder, params)
        if isinstance(n_raw, list):  # the recording ended one sample after the last spike without a word
            warnings.warn(f"read_phy: the raw data file params.py names (dat_path) was not found: "
                          f"{', '.join(n_raw)}; the recording's end was taken from the last spike, "
                          f"{last / fs:.6f} s (sample {last - 1} + 1; pass time_domain=(0, n_samples / sample_rate) "
                          "for the whole recording)")
            n_raw = None
        if n_raw is not None and n_raw < last:
            warnings.warn(f"read_phy: the raw data params.py names ({params.get('dat_path')!r}) holds {n_raw} samples "
                          f"per channel, but a spike lies at sample {last - 1}; not the sort's data (or other "
                          "n_channels_dat / dtype / offset): the recording is taken to end after the last spike")
            n_raw = None
        time_domain = (0.0, (n_raw if n_raw is not None else last) / fs)
    if not tables:
        listed = set(np.unique(clusters).tolist())
    cluster_ids = np.array(sorted(listed), dtype=np.int64)
    unlisted = ~np.isin(clusters, cluster_ids)
    if unlisted.all():  # (tables exist: without them every cluster is listed)
        # left out with a warning, then refused as "every cluster is labelled one of ('noise',)", which none was
        ids = np.unique(clusters)
        raise RecordingValidationError(
            f"read_phy: the cluster tables of {folder} ({', '.join(tables)}) list none of the "
            f"{count_noun(ids.size, 'cluster')} of {cluster_file} ({_some(ids)}) but "
            f"{count_noun(len(listed), 'cluster')}{' (' + _some(cluster_ids) + ')' if listed else ''}: every spike would "
            "be left out. A table written by another sort, or one Phy did not finish writing? Correct or remove it")
    if unlisted.any():
        ids = np.unique(clusters[unlisted])
        warnings.warn(f"read_phy: left out {int(unlisted.sum())} of {n_in_file} spikes whose cluster no cluster "
                      f"table of {folder} lists ({', '.join(tables)}): {count_noun(ids.size, 'cluster')} ({_some(ids)})")

    counts = np.bincount(np.searchsorted(cluster_ids, clusters[~unlisted]), minlength=cluster_ids.size)
    if not counts.all():
        empty = cluster_ids[counts == 0]
        warnings.warn(f"read_phy: left out {count_noun(empty.size, 'cluster')} that a cluster table ({', '.join(tables)}) lists "
                      f"but that have no spike in {cluster_file} (merged or split away in Phy): {_some(empty)}")
        cluster_ids, counts = cluster_ids[counts > 0], counts[counts > 0]
    keep = np.ones(cluster_ids.size, dtype=bool)
    quality = np.array([labels.get(int(c), "") for c in cluster_ids], dtype=object)
    for g in groups:
        hit = quality == g
        if hit.any():
            warnings.warn(f"read_phy: left out {count_noun(hit.sum(), 'cluster')} labelled {g!r} "
                          f"({count_noun(counts[hit].sum(), 'spike')}; exclude_groups=() keeps them)")
        keep &= ~hit
    # a label that differs from an excluded group only in case ('Noise' typed in a spreadsheet, or
    # exclude_groups=('MUA',)) was kept without a word: the clusters it was meant to leave out stayed in
    folded = {g.lower() for g in groups}
    for label in sorted({q for q in quality.tolist() if q and q not in groups and q.lower() in folded}):
        hit = quality == label
        meant = [g for g in groups if g.lower() == label.lower()]
        warnings.warn(f"read_phy: kept {count_noun(hit.sum(), 'cluster')} labelled {label!r} ({count_noun(counts[hit].sum(), 'spike')}), "
                      f"though exclude_groups names {meant[0]!r}: labels are compared exactly; add {label!r} to "
                      "exclude_groups to leave them out")
    # 'mua' clusters were kept without a word while 'noise' ones were counted: kept (the usual default, as
    # Phy's exports and spikeinterface keep them), and counted the same way, since each may mix several neurons
    hit = quality == "mua"
    # (an exclude_groups of 'MUA' is warned of above; exclude_groups=() asked for every cluster)
    if hit.any() and groups and "mua" not in folded:
        warnings.warn(f"read_phy: kept {count_noun(hit.sum(), 'cluster')} labelled 'mua' (multi-unit activity: each "
                      f"may hold the spikes of several neurons; {count_noun(counts[hit].sum(), 'spike')}); "
                      f"exclude_groups={(*groups, 'mua')!r} leaves them out")
    if not keep.any():
        raise RecordingValidationError(f"read_phy: every cluster of {folder} is labelled one of {groups} "
                                       "(exclude_groups); no unit is left")

    kept_ids = cluster_ids[keep]
    spike_kept = np.isin(clusters, kept_ids)
    units = np.searchsorted(kept_ids, clusters[spike_kept])
    times = samples[spike_kept].astype(np.float64) / fs
    # Kilosort 2 can detect one spike twice: the rule of the arrays and NWB readers, on the samples, in Phy's words
    names = [str(c) for c in kept_ids]
    warn_repeated_spikes(samples[spike_kept], units, names, f"read_phy: spikes of {folder}",
                         "remove them from the sort before reading to drop them", unit="cluster", instant="sample")
    if session is None:
        session = default_phy_session(folder)
    if times.size:
        try:
            lo, hi = (float(v) for v in time_domain)
        except (TypeError, ValueError):
            lo = hi = None  # from_arrays names a malformed time_domain
        if lo is not None and (times.min() < lo or times.max() >= hi):
            # from_arrays said only 'expected it to contain every spike': a user asking for part of the sort
            # is told how to get it
            n_out = int(np.sum((times < lo) | (times >= hi)))
            raise RecordingValidationError(
                f"time_domain: ({lo:g}, {hi:g}) s leaves out {n_out} of {times.size} spikes of {folder} (they span "
                f"{times.min():.6g}-{times.max():.6g} s at sample_rate {fs:g} Hz); it is the recording's extent, not a "
                "cut: read the whole sort and cut it with .restrict(start, stop)")
    rec = from_arrays(times, units, unit_names=names, warn_repeated_spikes=False,
                      warn_not_seconds=False, session=session, time_domain=time_domain)
    # the times are samples / sample_rate, so the rate itself is the test: a span of days was the only cue before,
    # which missed a short sort with 30.0 for 30 kHz (1000 times too long, yet under a day) and called a chronic
    # sort at 30000 Hz spanning days 'not in Hz'
    if fs < MIN_SORT_RATE_HZ:
        span = float(rec.spike_times[-1] - rec.spike_times[0]) if rec.n_spikes else 0.0
        warnings.warn(f"read_phy: {folder / 'params.py'}: sample_rate = {fs:g} Hz, below {MIN_SORT_RATE_HZ:g} Hz, "
                      "slower than any spike sort runs (a spike lasts about 1 ms): kHz written for Hz? the spike times "
                      f"(sample index / sample_rate, spanning {span:.6g} s) are then 1000 times too long; set "
                      "sample_rate to the sampling rate in Hz (e.g. 30000.0 for 30 kHz, not 30.0)",
                      UserWarning, stacklevel=2)
    return rec


__all__ = [
    "MIN_SORT_RATE_HZ", "PHY_GROUPS", "is_phy_folder", "SORTER_FOLDER_NAMES", "default_phy_session", "read_phy",
]
